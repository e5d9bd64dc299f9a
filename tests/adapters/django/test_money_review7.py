"""Review 7: review 6's fixes attacked (late approvals, flags, "accepted whatever raised").

CMI is the emulator (``cmi_core.sandbox``), its ledger the proof of what was sent.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from cmi_django import operations, services, signals
from cmi_django.actions import staff_action
from cmi_django.models import Operation, Payment

from cmi_core import CMIClient, PaymentState, TransitionError
from cmi_core.sandbox import Sandbox
from tests.adapters.django.conftest import late_refund_client
from tests.adapters.django.test_money_once import ledger

pytestmark = pytest.mark.django_db


def test_a_refused_staff_refund_is_not_reported_accepted_for_another_staffs_refund(
    captured: Payment, sandbox_settings: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two staff members refund the same payment at once. Staff A's refund (its own form's
    key) is made; staff B's is refused by the state machine (B's request sent nothing).
    B was told "CMI accepted the refund" because A's operation came after B's ``last``:
    B's refund, which the customer may be owed, is never sent again. B hears the refusal."""
    real = services.refund

    def concurrent(payment: Payment, amount: Decimal, **kwargs: Any) -> Operation:
        real(payment, Decimal(20), user="staff-a", key="form-a")  # A's, meanwhile
        raise TransitionError("captured", "refund", "another operation is in progress")

    monkeypatch.setattr(services, "refund", concurrent)
    result = staff_action(captured, "refund", "30", user="staff-b", key="form-b")
    assert ledger(sandbox_settings, captured.oid) == ["PreAuth", "PostAuth", "Credit"]  # A's only
    assert not result.ok
    assert "accepted" not in result.message
    assert "Not possible now" in result.message


def test_a_late_approval_giving_its_key_to_an_open_retry_that_then_fails_is_not_sent_again(
    captured: Payment, sandbox_settings: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refund A (key K) outlives its deadline; a refresh settles it ``failed``, freeing K;
    the same request comes again and refund B (key K) is being sent when CMI's approval of
    A arrives. A gave K up to B, still open; then B failed having sent nothing (a connect
    error). No operation held K as done: the next retry of request K refunded the
    customer a second time (two Credits for one request). K stays with the refund CMI
    made (after staff's refresh took the payment out of attention), and the retry is
    answered with it."""
    held: list[Operation] = []

    def same_request_under_way(amount: Decimal) -> None:  # B: its call under way
        held.append(
            Operation.objects.create(payment=captured, kind="refund", amount=amount, key="K")
        )

    monkeypatch.setattr(operations, "CMIClient", late_refund_client(same_request_under_way))
    late = services.refund(captured, Decimal(20), key="K")
    assert late.succeeded
    assert ledger(sandbox_settings, captured.oid) == ["PreAuth", "PostAuth", "Credit"]
    Operation.objects.filter(pk=held[0].pk).update(  # B: nothing was sent (connect error)
        state=Operation.FAILED, error="could not connect"
    )

    monkeypatch.setattr(operations, "CMIClient", CMIClient)
    services.refresh(Payment.objects.get(pk=captured.pk), user="staff")  # staff looked
    retry = services.refund(Payment.objects.get(pk=captured.pk), Decimal(20), key="K")
    assert ledger(sandbox_settings, captured.oid) == ["PreAuth", "PostAuth", "Credit"]
    assert retry.pk == late.pk
    captured.refresh_from_db()
    assert captured.refunded_amount == Decimal(20)
    assert captured.state == PaymentState.PARTIALLY_REFUNDED


def test_a_late_approval_is_kept_when_the_flag_s_receiver_raises(
    captured: Payment, sandbox_settings: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refund A outlives its deadline; a refresh settles it ``failed``; then CMI approves
    it. Recording it flags the payment, and a shop's ``payment_needs_attention`` receiver
    (a mail server down) raised inside the recording's transaction: the whole record was
    rolled back, A stayed ``failed`` for a refund CMI made, and staff was told the refund
    failed (the next click, a new form's key, refunds again). CMI's approval is kept and
    staff is told CMI accepted it."""

    def mail_down(sender: Any, **kwargs: Any) -> None:
        raise ConnectionRefusedError("the mail server is down")

    monkeypatch.setattr(operations, "CMIClient", late_refund_client())
    signals.payment_needs_attention.connect(mail_down)
    try:
        result = staff_action(captured, "refund", "20", user="staff", key="K")
    finally:
        signals.payment_needs_attention.disconnect(mail_down)
    assert ledger(sandbox_settings, captured.oid) == ["PreAuth", "PostAuth", "Credit"]
    refund = Operation.objects.get(kind="refund")
    assert (refund.state, refund.succeeded) == (Operation.SUCCEEDED, True)
    captured.refresh_from_db()
    assert captured.refunded_amount == Decimal(20)
    assert "CMI accepted the refund" in result.message
