"""Adversarial review of the money-moving operations (capture, void, refund), one process.

Each test is an attack that once succeeded: an answer from CMI applied after the shop's
own newer change, an amount CMI cannot carry recorded as a call whose outcome is unknown.
CMI is the emulator (``cmi_core.sandbox``), its ledger the proof of what was sent.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from cmi_django import services, sync
from cmi_django.models import Payment

from cmi_core import PaymentState
from cmi_core.sandbox import Sandbox
from tests.adapters.django.test_money_once import AMOUNT, ledger, seed_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def authorised(sandbox_settings: Sandbox, make_payment: Any) -> Payment:
    """A payment authorised in the shop's database and PRE at the emulator."""
    payment = make_payment()
    Payment.objects.filter(pk=payment.pk).update(state="authorised", authorised_amount=AMOUNT)
    payment.refresh_from_db()
    seed_order(sandbox_settings, payment.oid, captured=False)
    return payment


@pytest.fixture
def captured(sandbox_settings: Sandbox, make_payment: Any) -> Payment:
    """A payment captured in the shop's database and POST at the emulator."""
    payment = make_payment()
    Payment.objects.filter(pk=payment.pk).update(
        state="captured", authorised_amount=AMOUNT, captured_amount=AMOUNT
    )
    payment.refresh_from_db()
    seed_order(sandbox_settings, payment.oid, captured=True)
    return payment


def test_a_refresh_does_not_apply_an_answer_older_than_a_capture_made_meanwhile(
    authorised: Payment, sandbox_settings: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refresh asks CMI (PRE) with no lock held; a staff capture completes meanwhile; the
    stale PRE must not put the payment back to AUTHORISED with nothing captured (which
    would offer a second capture and tell the platform the capture was undone)."""
    ask = sync._ask

    def slow_ask(client: Any, payment: Payment, *, history: bool) -> Any:
        answer = ask(client, payment, history=history)  # CMI says PRE
        services.capture(Payment.objects.get(pk=payment.pk), key="staff-capture")
        return answer

    monkeypatch.setattr(sync, "_ask", slow_ask)
    with pytest.raises(services.OperationPendingError, match="refresh again"):
        services.refresh(authorised)
    authorised.refresh_from_db()
    assert (authorised.state, authorised.captured_amount) == (PaymentState.CAPTURED, AMOUNT)
    monkeypatch.setattr(sync, "_ask", ask)
    services.refresh(authorised)  # asked again: CMI's fresh answer agrees
    authorised.refresh_from_db()
    assert (authorised.state, authorised.captured_amount) == (PaymentState.CAPTURED, AMOUNT)
    assert ledger(sandbox_settings, authorised.oid) == ["PreAuth", "PostAuth"]


def test_a_refresh_does_not_apply_an_answer_older_than_a_refund_made_meanwhile(
    captured: Payment, sandbox_settings: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same race with a refund: CMI's RFND of 20 (its history) was read before a second
    refund of 30 was recorded; applying it would make 30 refundable twice in the shop."""
    services.refund(captured, Decimal(20), key="first")
    ask = sync._ask

    def slow_ask(client: Any, payment: Payment, *, history: bool) -> Any:
        answer = ask(client, payment, history=history)  # RFND, 20 refunded
        services.refund(Payment.objects.get(pk=payment.pk), Decimal(30), key="second")
        return answer

    monkeypatch.setattr(sync, "_ask", slow_ask)
    with pytest.raises(services.OperationPendingError, match="refresh again"):
        services.refresh(captured)
    captured.refresh_from_db()
    assert (captured.state, captured.refunded_amount) == (
        PaymentState.PARTIALLY_REFUNDED,
        Decimal(50),
    )
    assert captured.status.refundable == AMOUNT - Decimal(50)
    assert ledger(sandbox_settings, captured.oid) == ["PreAuth", "PostAuth", "Credit", "Credit"]
