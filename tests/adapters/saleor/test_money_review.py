"""Saleor's money-moving requests carrying an amount the app cannot trust.

A ``TRANSACTION_CHARGE_REQUESTED`` whose ``action.amount`` is missing its value, zero,
negative or not a number, or whose ``action.currency`` is not the payment's, asks for
something the app cannot know: it must not capture the whole authorisation (what an
unreadable amount used to mean), nor refund or cancel; the answer is ``*_FAILURE`` and
CMI is not called. CMI is the emulator on a live server, as in test_end_to_end.
"""

from __future__ import annotations

from typing import Any

import pytest
from cmi_django import services
from cmi_django.models import Operation, Payment
from cmi_saleor import hooks
from cmi_saleor.models import ChannelConfiguration
from django.test import Client

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
