"""Review 6: Saleor's answers to a charge CMI made when something after it raises.

CMI is the emulator on a live server, as in test_end_to_end.
"""

from __future__ import annotations

from typing import Any

import pytest
from cmi_django import signals
from cmi_django.models import Operation
from cmi_saleor.models import ChannelConfiguration
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from cmi_core import APITransportError, TransitionError, ValidationError
from cmi_core.sandbox import Sandbox
from tests.adapters.saleor import test_end_to_end as e2e
from tests.adapters.saleor.conftest import send
from tests.adapters.saleor.standin import FakeSaleor, action_payload
from tests.adapters.saleor.test_pending_requests import authorised

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
