"""Saleor's money-moving requests carrying an amount the app cannot trust.

A ``TRANSACTION_CHARGE_REQUESTED`` whose ``action.amount`` is missing its value, zero,
negative or not a number, or whose ``action.currency`` is not the payment's, asks for
something the app cannot know: it must not capture the whole authorisation (what an
unreadable amount used to mean), nor refund or cancel; the answer is ``*_FAILURE`` and
CMI is not called. CMI is the emulator on a live server, as in test_end_to_end.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from cmi_django import services
from cmi_django.models import Operation, Payment
from cmi_saleor import hooks
from cmi_saleor.models import ChannelConfiguration
from django.test import Client
from django.utils import timezone

from cmi_core.sandbox import Sandbox
from tests.adapters.saleor import test_end_to_end as e2e
from tests.adapters.saleor.conftest import send
from tests.adapters.saleor.standin import FakeSaleor, action_payload, response_errors
from tests.adapters.saleor.test_pending_requests import authorised

pytestmark = pytest.mark.django_db(transaction=True)

sandbox = e2e.sandbox
app = e2e.app

CHARGE = "TRANSACTION_CHARGE_REQUESTED"


@pytest.mark.parametrize(
    "case",
    [("0", "MAD"), ("-5", "MAD"), ("abc", "MAD"), ("NaN", "MAD"), ({}, "MAD"), ("100", "EUR")],
    ids=["zero", "negative", "text", "nan", "object", "other-currency"],
)
def test_a_charge_with_an_unusable_amount_captures_nothing(
    client: Client,
    saleor: FakeSaleor,
    sandbox: Sandbox,
    app: ChannelConfiguration,
    case: tuple[Any, str],
) -> None:
    amount, currency = case
    app.capture_mode = "manual"
    app.save()
    transaction, oid = authorised(client, saleor, sandbox)
    payload = action_payload(transaction, "CHARGE", "100.00")
    payload["action"]["amount"] = amount
    payload["action"]["currency"] = currency
    response = send(client, saleor, CHARGE, payload, check=False)  # the stand-in's books
    assert response.status_code == 200  # cannot read such an amount: checked here instead
    answer = response.json()
    assert not response_errors(CHARGE, answer)
    assert answer["result"] == "CHARGE_FAILURE", answer
    assert sandbox.order(oid).state == "PRE"  # CMI was not asked to capture
    assert not Operation.objects.filter(kind="capture").exists()
    assert Payment.objects.get(oid=oid).captured_amount == 0


def test_a_charge_cmi_made_is_a_success_even_when_the_hook_fails_after(
    client: Client,
    saleor: FakeSaleor,
    sandbox: Sandbox,
    app: ChannelConfiguration,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CMI captured; then the app's own bookkeeping (here the report of the released
    remainder after a partial capture) raised something unexpected. The webhook used to
    end in a 500, which Saleor takes as a failed charge: money moved, Saleor's books say
    it did not. The answer is CHARGE_SUCCESS (the hook's failure is logged and kept on
    the operation)."""
    app.capture_mode = "manual"
    app.save()
    transaction, oid = authorised(client, saleor, sandbox)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the bookkeeping broke")

    monkeypatch.setattr(hooks, "report", broken)
    client.raise_request_exception = False
    payload = action_payload(transaction, "CHARGE", "100.00")
    response = send(client, saleor, CHARGE, payload)
    assert response.status_code == 200
    answer = response.json()
    assert (answer["result"], answer["amount"]) == ("CHARGE_SUCCESS", "100.00")
    assert sandbox.order(oid).state == "POST"
    operation = Operation.objects.get(kind="capture")
    assert (operation.succeeded, operation.error) == (
        True,
        "CMI accepted; the platform hook failed: RuntimeError",
    )
    # Saleor asks again (it did not hear): the same success, nothing sent twice
    again = send(client, saleor, CHARGE, payload).json()
    assert again["result"] == "CHARGE_SUCCESS"
    assert Operation.objects.filter(kind="capture").count() == 1


def test_a_cancel_racing_a_charge_does_not_void_the_capture(
    client: Client,
    saleor: FakeSaleor,
    sandbox: Sandbox,
    app: ChannelConfiguration,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Saleor's cancel is refused once money is captured (Saleor would book a canceled
    authorization and still show the capture as charged). That check read the payment
    without its lock: a charge landing between the check and the void let CMI void the
    capture while Saleor kept it as charged."""
    app.capture_mode = "manual"
    app.save()
    transaction, oid = authorised(client, saleor, sandbox)
    void = services.void

    def charge_lands_first(payment: Payment, **kwargs: Any) -> Operation:
        services.capture(Payment.objects.get(pk=payment.pk), key="the-charge")
        return void(payment, **kwargs)

    monkeypatch.setattr(services, "void", charge_lands_first)
    payload = action_payload(transaction, "CANCEL", "120.50")
    answer = send(client, saleor, "TRANSACTION_CANCELATION_REQUESTED", payload).json()
    assert answer["result"] == "CANCEL_FAILURE", answer
    assert sandbox.order(oid).state == "POST"  # the capture stands
    assert not Operation.objects.filter(kind="void").exists()


@pytest.mark.usefixtures("app")
def test_a_charge_cmi_answers_after_saleor_would_give_up_is_answered_pending_then_resolved(
    client: Client,
    saleor: FakeSaleor,
    sandbox: Sandbox,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CMI captures, then answers after the time Saleor waits for a webhook (18 s; here
    the app's budget is 1 s). Before, the app waited for CMI (up to its 30 s deadline):
    Saleor booked a CHARGE_FAILURE for money CMI had captured, and staff asking again
    (a new request, a new key) could move it twice. Now the app answers "pending" while
    CMI is still answering, the operation is ``unknown`` (never sent again), and once
    CMI's history shows the capture, Saleor hears CHARGE_SUCCESS under the same
    reference."""
    settings.CMI_SALEOR_ACTION_WITHIN = 1
    ChannelConfiguration.objects.update(capture_mode="manual")
    transaction, oid = authorised(client, saleor, sandbox)
    answered_by_cmi = threading.Event()
    handle = sandbox.api.handle

    def acts_then_answers_late(body: bytes, content_type: str) -> bytes:
        answer = handle(body, content_type)  # CMI acts at once...
        if b"PostAuth" in body:
            time.sleep(3)  # ...and its answer is slow to come back
            answered_by_cmi.set()
        return answer

    monkeypatch.setattr(sandbox.api, "handle", acts_then_answers_late)
    charge = action_payload(transaction, "CHARGE", "100.00", event_id="VHJhbnNhY3Rpb25FdmVudDo3")
    answer = e2e.act(client, saleor, CHARGE, charge)
    assert not answered_by_cmi.is_set()  # Saleor had its answer before CMI answered
    assert "result" not in answer, answer  # pending: neither a failure nor a success
    assert answer["pspReference"]
    assert sandbox.order(oid).state == "POST"
    operation = Operation.objects.get(kind="capture")
    assert operation.state == Operation.UNKNOWN
    assert saleor.pending(transaction["id"]) == {"charge": Decimal("100.00")}

    # Saleor delivers the same request again: the same pending answer, nothing re-sent
    again = e2e.act(client, saleor, CHARGE, charge)
    assert again == answer
    assert Operation.objects.filter(kind="capture").count() == 1
    assert answered_by_cmi.wait(10)

    # the call's deadline long past, a refresh settles it from CMI's history
    Operation.objects.filter(pk=operation.pk).update(
        created_at=timezone.now() - timedelta(minutes=10)
    )
    services.refresh(Payment.objects.get(oid=oid), user="cron", source="reconcile")
    assert saleor.pending(transaction["id"]) == {}
    resolution = [r for r in saleor.reports if r["pspReference"] == answer["pspReference"]]
    assert [r["type"] for r in resolution] == ["CHARGE_SUCCESS"]
    assert [r["type"] for r in saleor.reports].count("CHARGE_SUCCESS") == 1
    assert e2e.books(saleor, transaction)[1] == Decimal("100.00")


@pytest.mark.usefixtures("app")
def test_transaction_process_asks_cmi_within_the_budget_saleor_leaves(
    client: Client,
    saleor: FakeSaleor,
    sandbox: Sandbox,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No callback yet, and CMI's status API is slow. transactionProcess used to wait
    for it with the channel's whole deadline (30 s), longer than Saleor waits for the
    webhook (18 s): Saleor gave up and booked the process call as failed. The status call
    is now cut to the app's budget (here 1 s): the answer comes in time, says what the
    app knows (nothing changed, a failed status operation recorded), and the next call,
    CMI answering quickly, brings the truth."""
    settings.CMI_SALEOR_ACTION_WITHIN = 1
    transaction, answer, browser = e2e.start(client, saleor, sandbox)
    oid = answer["data"]["oid"]
    sandbox.set_fault("drop", oid=oid)  # CMI's callback never comes
    browser.pay(e2e.APPROVED_CARD)
    assert Payment.objects.get(oid=oid).state == "redirected"
    handle = sandbox.api.handle
    slow = threading.Event()
    slow.set()
    answered_by_cmi = threading.Event()

    def slow_status(body: bytes, content_type: str) -> bytes:
        if slow.is_set() and b"ORDERSTATUS" in body:
            time.sleep(4)
            answered_by_cmi.set()
        return handle(body, content_type)

    monkeypatch.setattr(sandbox.api, "handle", slow_status)
    first = e2e.process(client, saleor, transaction)
    assert not answered_by_cmi.is_set()  # Saleor had its answer before CMI answered
    assert first.get("result") != "CHARGE_SUCCESS", first
    payment = Payment.objects.get(oid=oid)
    assert payment.state == "redirected"
    (status,) = Operation.objects.filter(payment=payment, kind="status")
    assert status.state == Operation.FAILED
    assert sandbox.order(oid).state == "PRE"  # nothing moved

    slow.clear()
    second = e2e.process(client, saleor, transaction)
    assert second["result"] == "CHARGE_SUCCESS", second
    assert Payment.objects.get(oid=oid).state == "captured"
