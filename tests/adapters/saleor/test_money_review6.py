"""Review 6: Saleor's answers to a charge CMI made when something after it raises.

CMI is the emulator on a live server, as in test_end_to_end.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from cmi_django import operations, services, signals
from cmi_django.models import Operation, Payment
from cmi_saleor.models import ChannelConfiguration
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from cmi_core import (
    APITransportError,
    CMIClient,
    Event,
    PaymentState,
    TransitionError,
    ValidationError,
)
from cmi_core.sandbox import Sandbox
from tests.adapters.saleor import test_end_to_end as e2e
from tests.adapters.saleor.conftest import send
from tests.adapters.saleor.standin import FakeSaleor, action_payload
from tests.adapters.saleor.test_pending_requests import (
    an_earlier_delivery_died_while_sending,
    authorised,
)

pytestmark = pytest.mark.django_db(transaction=True)

sandbox = e2e.sandbox
app = e2e.app

CHARGE = "TRANSACTION_CHARGE_REQUESTED"


@pytest.mark.parametrize(
    "error",
    [
        ImproperlyConfigured("EMAIL_HOST is not set"),
        ValidationError("amount", "a receiver's own check"),
        TransitionError("captured", "refund", "a receiver's own bookkeeping"),
        APITransportError("a receiver asked CMI something", retryable=True),
    ],
    ids=["improperly-configured", "validation", "transition", "api"],
)
def test_a_charge_cmi_made_is_a_success_whatever_a_receiver_raises_after(
    client: Client,
    saleor: FakeSaleor,
    sandbox: Sandbox,
    app: ChannelConfiguration,
    error: Exception,
) -> None:
    """CMI captured; then a shop's ``payment_captured`` receiver (its e-mail, its ERP)
    raised an error of a kind the webhook also expects from CMI or the configuration.
    That error was answered CHARGE_FAILURE ("failed: ImproperlyConfigured", "CMI refused:
    ..."): Saleor booked a failed charge for money CMI had captured. The answer is
    CHARGE_SUCCESS, as for any other error raised after CMI's approval."""
    app.capture_mode = "manual"
    app.save()
    transaction, oid = authorised(client, saleor, sandbox)

    def receiver(**kwargs: Any) -> None:
        raise error

    signals.payment_captured.connect(receiver, dispatch_uid="review6-broken")
    try:
        response = send(client, saleor, CHARGE, action_payload(transaction, "CHARGE", "100.00"))
    finally:
        signals.payment_captured.disconnect(dispatch_uid="review6-broken")
    assert response.status_code == 200
    answer = response.json()
    assert sandbox.order(oid).state == "POST"  # CMI captured
    assert Operation.objects.get(kind="capture").succeeded
    assert (answer["result"], answer["amount"]) == ("CHARGE_SUCCESS", "100.00")


def test_a_charge_cmi_approves_after_a_refresh_failed_it_is_told_to_saleor(
    client: Client,
    saleor: FakeSaleor,
    sandbox: Sandbox,
    app: ChannelConfiguration,
) -> None:
    """A charge's call outlived its deadline; Saleor's retry was answered pending; a
    refresh found no capture in CMI's history, settled it ``failed`` and Saleor heard
    CHARGE_FAILURE. Then CMI's approval of that call arrived: the shop recorded the
    capture, Saleor was told nothing (the change came as the platform's own), the
    payment was not flagged: Saleor's books said not charged, CMI had captured. The
    payment is flagged, and Saleor told so (an INFO event)."""
    app.capture_mode = "manual"
    app.save()
    transaction, oid = authorised(client, saleor, sandbox)
    payment = Payment.objects.get(oid=oid)
    event_id = "VHJhbnNhY3Rpb25FdmVudDo3Nzc="
    first = an_earlier_delivery_died_while_sending(payment, f"saleor-event:{event_id}")
    answer = send(
        client, saleor, CHARGE, action_payload(transaction, "CHARGE", "100.00", event_id=event_id)
    ).json()
    assert "result" not in answer, answer  # pending
    services.refresh(Payment.objects.get(oid=oid), user="cron", source="reconcile")
    first.refresh_from_db()
    assert first.state == Operation.FAILED
    assert [r["type"] for r in saleor.reports][-1] == "CHARGE_FAILURE"
    before = len(saleor.reports)

    with CMIClient(app.cmi_config()) as cmi:  # the late call: CMI captures, then answers
        result = cmi.capture(oid, Decimal("100.00"), payment.currency)
    operations._record(first, Event.capture(Decimal("100.00")), result, source="platform")

    first.refresh_from_db()
    assert first.succeeded
    payment.refresh_from_db()
    assert payment.captured_amount == Decimal("100.00")
    assert payment.state == PaymentState.NEEDS_ATTENTION
    told = [r for r in saleor.reports[before:] if r["type"] == "INFO"]
    assert told, saleor.reports[before:]
    assert "settled it as failed" in told[0]["message"]  # the reason, in the shop's words
