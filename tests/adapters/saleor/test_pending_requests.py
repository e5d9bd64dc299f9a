"""Requests the app answers as pending are resolved in Saleor's books (issue 12).

Saleor shows a ``*_REQUEST`` event with a pspReference as pending (its charge, refund or
cancel pending amount) until the app reports a success or a failure under the same
reference (``_should_increase_pending_amount`` in
``saleor/payment/transaction_item_calculations.py``); the stand-in's
:meth:`~tests.adapters.saleor.standin.FakeSaleor.pending` models that, and
:meth:`~tests.adapters.saleor.standin.FakeSaleor.processed` that ``transactionProcess``
keeps a REQUEST as its final answer. Two ways the app answers pending:

- a charge whose own operation is still open when the webhook must be answered (CMI may
  have captured): a ``*_FAILURE`` would tell Saleor nothing happened;
- ``transactionProcess`` of a payment flagged for staff: ``*_REQUEST``, which Saleor
  never asks about again.

CMI is the emulator (``cmi sandbox``) on a live server, as in test_end_to_end.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from cmi_django import services
from cmi_django.models import Operation, Payment
from cmi_saleor.models import ChannelConfiguration, PendingRequest
from django.test import Client
from django.utils import timezone

from cmi_core import CMIClient
from cmi_core.sandbox import Sandbox
from tests.adapters.saleor import test_end_to_end as e2e
from tests.adapters.saleor.conftest import send
from tests.adapters.saleor.standin import FakeSaleor, action_payload, new_transaction
from tests.adapters.saleor.test_end_to_end import (
    INIT,
    RETURN_URL,
    ZERO,
    act,
    books,
    session_payload,
    start,
    storefront_process,
)
from tests.sandbox.support import APPROVED_CARD, Browser

pytestmark = pytest.mark.django_db(transaction=True)

sandbox = e2e.sandbox  # the emulator and the app on a live server, as end to end
app = e2e.app

CHARGE = "TRANSACTION_CHARGE_REQUESTED"
AMOUNT = Decimal("120.50")


def authorised(client: Client, saleor: FakeSaleor, sandbox: Sandbox) -> tuple[dict[str, Any], str]:
    """A payment Saleor asked to authorize, authorised at CMI (PRE)."""
    transaction = new_transaction()
    payload = session_payload(
        INIT, transaction, data={"returnUrl": RETURN_URL}, action_type="AUTHORIZATION"
    )
    answer = act(client, saleor, INIT, payload)
    browser = Browser(sandbox)
    browser.open(list(answer["data"]["fields"].items()))
    browser.pay(APPROVED_CARD)
    oid = answer["data"]["oid"]
    assert sandbox.order(oid).state == "PRE"
    return transaction, oid


def an_earlier_delivery_died_while_sending(payment: Payment, key: str) -> Operation:
    """The charge's first delivery recorded its intent and sent it, then its process
    died before CMI's answer was recorded: the operation stays ``pending`` past its
    call's deadline (what operations._operate leaves behind)."""
    operation = Operation.objects.create(
        payment=payment,
        kind="capture",
        amount=Decimal("100.00"),
        key=key,
        user="saleor",
        state=Operation.PENDING,
        succeeded=False,
    )
    Operation.objects.filter(pk=operation.pk).update(
        created_at=timezone.now() - timedelta(minutes=10)
    )
    return operation


@pytest.mark.parametrize("cmi_captured", [True, False], ids=["CMI-captured", "CMI-did-not"])
def test_a_charge_still_open_is_pending_then_resolved(
    client: Client,
    saleor: FakeSaleor,
    sandbox: Sandbox,
    app: ChannelConfiguration,
    cmi_captured: bool,
) -> None:
    transaction, oid = authorised(client, saleor, sandbox)
    payment = Payment.objects.get(oid=oid)
    charge = action_payload(
        transaction, "CHARGE", "100.00", event_id="VHJhbnNhY3Rpb25FdmVudDo5OTk="
    )
    an_earlier_delivery_died_while_sending(payment, "saleor-event:VHJhbnNhY3Rpb25FdmVudDo5OTk=")
    if cmi_captured:  # the lost call did reach CMI
        with CMIClient(app.cmi_config()) as cmi:
            cmi.capture(oid, Decimal("100.00"), payment.currency)
    answer = act(client, saleor, CHARGE, charge)
    # neither a failure (CMI may have captured) nor a success (it may not have)
    assert "result" not in answer, answer
    assert answer["pspReference"]
    assert saleor.pending(transaction["id"]) == {"charge": Decimal("100.00")}
    assert sandbox.order(oid).state == ("POST" if cmi_captured else "PRE")  # nothing re-sent

    services.refresh(Payment.objects.get(oid=oid), user="cron", source="reconcile")

    assert saleor.pending(transaction["id"]) == {}
    resolution = [r for r in saleor.reports if r["pspReference"] == answer["pspReference"]]
    if cmi_captured:
        assert [r["type"] for r in resolution] == ["CHARGE_SUCCESS"]
        # reported once: not again under CMI's TransId by the hook
        assert [r["type"] for r in saleor.reports].count("CHARGE_SUCCESS") == 1
        assert books(saleor, transaction)[1] == Decimal("100.00")
    else:
        assert [r["type"] for r in resolution] == ["CHARGE_FAILURE"]
        assert books(saleor, transaction) == (AMOUNT, ZERO, ZERO, ZERO)
    request = PendingRequest.objects.get()
    assert request.resolved is not None


def test_another_requests_open_operation_is_a_failure(
    client: Client,
    saleor: FakeSaleor,
    sandbox: Sandbox,
    app: ChannelConfiguration,
) -> None:
    """A different request meets the open capture: it was not sent, Saleor may ask again."""
    transaction, oid = authorised(client, saleor, sandbox)
    an_earlier_delivery_died_while_sending(Payment.objects.get(oid=oid), "saleor-event:other")
    answer = act(client, saleor, CHARGE, action_payload(transaction, "CHARGE", "100.00"))
    assert answer["result"] == "CHARGE_FAILURE"
    assert saleor.pending(transaction["id"]) == {}
    assert not PendingRequest.objects.exists()


def test_a_flagged_payment_s_request_is_resolved_when_staff_settle_it(
    client: Client,
    saleor: FakeSaleor,
    sandbox: Sandbox,
    app: ChannelConfiguration,
) -> None:
    """CMI's callback never came and staff flagged the payment: ``transactionProcess``
    answers CHARGE_REQUEST, which Saleor keeps as the session's final answer (it never
    asks the app again). When staff settle the payment from CMI's status, Saleor must
    hear the outcome under that request's reference, or it shows a charge pending forever
    beside the money actually charged."""
    transaction, answer, browser = start(client, saleor, sandbox)
    oid = answer["data"]["oid"]
    sandbox.set_fault("drop", oid=oid)
    browser.pay(APPROVED_CARD)
    assert sandbox.order(oid).state == "PRE"
    services.flag(Payment.objects.get(oid=oid), "no callback; checking with the bank")
    waiting = storefront_process(client, saleor, transaction)
    assert waiting["result"] == "CHARGE_REQUEST"
    assert saleor.processed(transaction["id"]) is not None  # final: never asked again
    assert saleor.pending(transaction["id"]) == {"charge": AMOUNT}

    services.refresh(Payment.objects.get(oid=oid), user="staff", source="refresh")

    # CMI holds the money (PRE): authorized in Saleor, the charge request did not happen
    assert Payment.objects.get(oid=oid).state == "authorised"
    assert saleor.pending(transaction["id"]) == {}
    resolved = [r for r in saleor.reports if r["pspReference"] == waiting["pspReference"]]
    assert [r["type"] for r in resolved] == ["CHARGE_FAILURE"]
    assert books(saleor, transaction) == (AMOUNT, ZERO, ZERO, ZERO)
    assert saleor.reports[-1]["availableActions"] == ["CHARGE", "CANCEL"]
    # staff then charge it from Saleor like any authorization
    charged = act(client, saleor, CHARGE, action_payload(transaction, "CHARGE", "120.50"))
    assert charged["result"] == "CHARGE_SUCCESS"
    assert sandbox.order(oid).state == "POST"
    assert books(saleor, transaction) == (ZERO, AMOUNT, ZERO, ZERO)
    assert saleor.pending(transaction["id"]) == {}


def test_a_flagged_payment_captured_by_staff_resolves_its_request_once(
    client: Client,
    saleor: FakeSaleor,
    sandbox: Sandbox,
    app: ChannelConfiguration,
) -> None:
    """CMI captured (POST) while the payment was flagged: the resolution is the charge,
    reported once, under the request's reference."""
    transaction, answer, browser = start(client, saleor, sandbox)
    oid = answer["data"]["oid"]
    sandbox.set_fault("drop", oid=oid)
    browser.pay(APPROVED_CARD)
    with CMIClient(app.cmi_config()) as cmi:  # captured at CMI meanwhile (its back office)
        cmi.capture(oid, AMOUNT, Payment.objects.get(oid=oid).currency)
    services.flag(Payment.objects.get(oid=oid), "no callback")
    waiting = storefront_process(client, saleor, transaction)
    assert waiting["result"] == "CHARGE_REQUEST"
    services.refresh(Payment.objects.get(oid=oid), user="staff", source="refresh")
    assert Payment.objects.get(oid=oid).state == "captured"
    assert saleor.pending(transaction["id"]) == {}
    assert books(saleor, transaction) == (ZERO, AMOUNT, ZERO, ZERO)
    charges = [r for r in saleor.reports if r["type"] == "CHARGE_SUCCESS"]
    assert [r["pspReference"] for r in charges] == [waiting["pspReference"]]


def test_a_flagged_payment_voided_resolves_its_request_as_a_failure(
    client: Client,
    saleor: FakeSaleor,
    sandbox: Sandbox,
    app: ChannelConfiguration,
) -> None:
    transaction, answer, browser = start(client, saleor, sandbox)
    oid = answer["data"]["oid"]
    sandbox.set_fault("drop", oid=oid)
    browser.pay(APPROVED_CARD)
    payment = Payment.objects.get(oid=oid)
    services.flag(payment, "suspect")
    assert storefront_process(client, saleor, transaction)["result"] == "CHARGE_REQUEST"
    services.void(Payment.objects.get(oid=oid), user="staff")  # release the hold
    assert sandbox.order(oid).state == "VOID"
    assert saleor.pending(transaction["id"]) == {}
    resolved = [r for r in saleor.reports if r["pspReference"] == f"{oid}-attention"]
    assert [r["type"] for r in resolved] == ["CHARGE_FAILURE"]


def test_a_pending_charge_that_cmi_then_refuses_is_resolved_as_a_failure(
    client: Client,
    saleor: FakeSaleor,
    sandbox: Sandbox,
    app: ChannelConfiguration,
) -> None:
    """Review: Saleor's retry was answered pending while the first delivery's call to CMI
    was still running; that call then ends with CMI's refusal (operations._fail marks the
    operation failed). Saleor must hear CHARGE_FAILURE under the pending reference: the
    failure changes no payment, so no hook runs, only the operation's save says it."""
    from cmi_django import operations

    from cmi_core import APIError

    transaction, oid = authorised(client, saleor, sandbox)
    payment = Payment.objects.get(oid=oid)
    charge = action_payload(
        transaction, "CHARGE", "100.00", event_id="VHJhbnNhY3Rpb25FdmVudDo4ODg="
    )
    first = an_earlier_delivery_died_while_sending(
        payment, "saleor-event:VHJhbnNhY3Rpb25FdmVudDo4ODg="
    )
    answer = act(client, saleor, CHARGE, charge)
    assert "result" not in answer, answer
    assert saleor.pending(transaction["id"]) == {"charge": Decimal("100.00")}

    operations._fail(first, APIError("Declined", response="Declined", proc_return_code="99"))

    first.refresh_from_db()
    assert first.state == Operation.FAILED
    resolution = [r for r in saleor.reports if r["pspReference"] == answer["pspReference"]]
    assert [r["type"] for r in resolution] == ["CHARGE_FAILURE"]
    assert saleor.pending(transaction["id"]) == {}
    assert PendingRequest.objects.get().resolved is not None


def test_a_resolved_charge_answered_again_is_counted_once(
    client: Client,
    saleor: FakeSaleor,
    sandbox: Sandbox,
    app: ChannelConfiguration,
) -> None:
    """Review: the delivery answered pending timed out at Saleor's end (the answer waited
    for the first call's deadline), so Saleor delivers the charge again after the
    operation settled. The resolution (CHARGE_SUCCESS under the request's reference) is
    reported all the same: the new answer must carry that reference, or Saleor adds the
    same capture twice (it deduplicates on type and pspReference)."""
    transaction, oid = authorised(client, saleor, sandbox)
    payment = Payment.objects.get(oid=oid)
    charge = action_payload(
        transaction, "CHARGE", "100.00", event_id="VHJhbnNhY3Rpb25FdmVudDo3Nzc="
    )
    an_earlier_delivery_died_while_sending(payment, "saleor-event:VHJhbnNhY3Rpb25FdmVudDo3Nzc=")
    with CMIClient(app.cmi_config()) as cmi:  # the lost call did reach CMI
        cmi.capture(oid, Decimal("100.00"), payment.currency)
    lost = send(client, saleor, CHARGE, charge, check=False)  # Saleor gave up waiting
    assert "result" not in lost.json()
    services.refresh(Payment.objects.get(oid=oid), user="cron", source="reconcile")
    again = act(client, saleor, CHARGE, charge)  # Saleor's next delivery
    assert again["result"] == "CHARGE_SUCCESS"
    assert books(saleor, transaction)[1] == Decimal("100.00")  # charged once
    assert sandbox.order(oid).state == "POST"


def test_a_resolution_found_by_two_paths_at_once_is_reported_once(
    client: Client,
    saleor: FakeSaleor,
    sandbox: Sandbox,
    app: ChannelConfiguration,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hook's path and the post_save path may both find the same open request: the one
    whose UPDATE marks it resolved reports it, the other reports nothing (Saleor would book
    an INFO-like second event otherwise, and our books would say it twice)."""
    from cmi_saleor import hooks

    transaction, answer, browser = start(client, saleor, sandbox)
    oid = answer["data"]["oid"]
    sandbox.set_fault("drop", oid=oid)
    browser.pay(APPROVED_CARD)
    services.flag(Payment.objects.get(oid=oid), "no callback; checking with the bank")
    waiting = storefront_process(client, saleor, transaction)
    assert waiting["result"] == "CHARGE_REQUEST"

    real = hooks._resolution
    raced: list[bool] = []

    def racing(request: PendingRequest, payment: Payment) -> Any:
        found = real(request, payment)
        if found is not None and not raced:  # the other path gets there first
            raced.append(True)
            hooks.resolve_requests(payment)
        return found

    monkeypatch.setattr(hooks, "_resolution", racing)
    services.refresh(Payment.objects.get(oid=oid), user="staff", source="refresh")

    assert raced
    resolved = [r for r in saleor.reports if r["pspReference"] == waiting["pspReference"]]
    assert [r["type"] for r in resolved] == ["CHARGE_FAILURE"]
