"""Adversarial review of the money-moving operations (capture, void, refund), one process.

Each test is an attack that once succeeded: an answer from CMI applied after the shop's
own newer change, an amount CMI cannot carry recorded as a call whose outcome is unknown.
CMI is the emulator (``cmi_core.sandbox``), its ledger the proof of what was sent.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from cmi_django import operations, services, sync
from cmi_django.models import Operation, Payment
from django.utils import timezone

from cmi_core import (
    APIError,
    APITransportError,
    CMIClient,
    PaymentState,
    TransitionError,
    ValidationError,
)
from cmi_core.sandbox import Sandbox
from tests.adapters.django.conftest import late_refund_client
from tests.adapters.django.test_money_once import AMOUNT, ledger

pytestmark = pytest.mark.django_db


def test_a_refresh_does_not_apply_an_answer_older_than_a_capture_made_meanwhile(
    authorised: Payment, sandbox_settings: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refresh asks CMI (PRE) with no lock held; a staff capture completes meanwhile; the
    stale PRE must not put the payment back to AUTHORISED with nothing captured (which
    would offer a second capture and tell the platform the capture was undone)."""
    ask = sync._ask

    def slow_ask(client: Any, payment: Payment, **kw: Any) -> Any:
        answer = ask(client, payment, **kw)  # CMI says PRE
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

    def slow_ask(client: Any, payment: Payment, **kw: Any) -> Any:
        answer = ask(client, payment, **kw)  # RFND, 20 refunded
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


def test_a_refund_cmi_cannot_carry_is_refused_before_anything_is_recorded(
    captured: Payment, sandbox_settings: Sandbox
) -> None:
    """A refund of 10.123 MAD (3 decimals) was recorded ``pending``, then the client
    refused to format it and the operation was left ``unknown``: nothing had been sent,
    yet it blocked every void and capture and held 10.123 "promised" until a reconcile."""
    with pytest.raises(ValidationError):
        services.refund(captured, Decimal("10.123"), key="three-decimals")
    assert not captured.operations.filter(state__in=Operation.OPEN).exists()
    assert ledger(sandbox_settings, captured.oid) == ["PreAuth", "PostAuth"]
    services.void(captured, key="void-after")  # nothing open blocks it
    assert ledger(sandbox_settings, captured.oid) == ["PreAuth", "PostAuth", "Void"]


def test_a_partial_capture_cmi_cannot_carry_is_refused_before_anything_is_recorded(
    authorised: Payment, sandbox_settings: Sandbox
) -> None:
    with pytest.raises(ValidationError):
        services.capture(authorised, Decimal("10.005"), key="three-decimals")
    assert not authorised.operations.filter(state__in=Operation.OPEN).exists()
    services.capture(authorised, Decimal("10.01"), key="right")
    authorised.refresh_from_db()
    assert authorised.captured_amount == Decimal("10.01")
    assert ledger(sandbox_settings, authorised.oid) == ["PreAuth", "PostAuth"]


def test_a_call_the_client_refuses_to_build_is_failed_not_unknown(
    authorised: Payment, sandbox_settings: Sandbox
) -> None:
    """The client refuses some requests before sending anything (a value XML cannot
    carry): that operation surely moved nothing, so it is ``failed``, and blocks nothing."""
    Payment.objects.filter(pk=authorised.pk).update(oid="bad\x01oid")
    authorised.refresh_from_db()
    with pytest.raises(ValidationError):
        services.void(authorised, key="void-1")
    (operation,) = authorised.operations.all()
    assert (operation.state, operation.succeeded) == (Operation.FAILED, False)


def _refund_sent_20_s_ago(captured: Payment, settings: Any) -> Operation:
    """A pending refund of 20 sent 20 s ago, under a 60 s API deadline (HTTP timeout 1 s)."""
    settings.CMI_PAYMENTS["default"].update(HTTP_TIMEOUT=1, API_DEADLINE=60)
    operation = Operation.objects.create(
        payment=captured, kind="refund", amount=Decimal(20), key="slow", state=Operation.PENDING
    )
    Operation.objects.filter(pk=operation.pk).update(
        created_at=timezone.now() - timedelta(seconds=20)
    )
    return operation


def test_a_refund_still_within_its_call_deadline_is_not_settled_by_a_refresh(
    captured: Payment, sandbox_settings: Sandbox, settings: Any
) -> None:
    """A config whose API deadline (60 s) is longer than twice its HTTP timeout (1 s): a
    refund sent 20 s ago may still be running; a refresh that settles it ``failed`` (CMI's
    history does not show it yet) would offer the same money to refund again."""
    operation = _refund_sent_20_s_ago(captured, settings)
    with pytest.raises(services.OperationPendingError, match="refresh again"):
        services.refresh(captured)
    operation.refresh_from_db()
    assert operation.state == Operation.PENDING
    with pytest.raises(TransitionError, match="exceeds"):  # the 20 stay promised
        services.refund(captured, AMOUNT, key="all")
    assert ledger(sandbox_settings, captured.oid) == ["PreAuth", "PostAuth"]


def test_a_refresh_asked_within_a_short_budget_still_settles_by_the_channel_deadline(
    captured: Payment, sandbox_settings: Sandbox, settings: Any
) -> None:
    """``refresh(within=...)`` (Saleor's transactionProcess) cuts its own status call's
    deadline, not the time another call may still be running: a refund sent 20 s ago
    under a 60 s deadline stays pending, as with a refresh without a budget."""
    operation = _refund_sent_20_s_ago(captured, settings)
    with pytest.raises(services.OperationPendingError, match="refresh again"):
        services.refresh(captured, within=2)
    operation.refresh_from_db()
    assert operation.state == Operation.PENDING


def test_cmi_approving_a_refund_a_refresh_settled_as_failed_meanwhile_is_recorded(
    captured: Payment, sandbox_settings: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refund's call outlived its deadline; a refresh meanwhile found no trace of it
    in CMI's history and settled it ``failed``; then CMI answered Approved. The approval
    is the proof: the refund is recorded as done (before, it stayed ``failed``, the
    payment showed nothing refunded, and the caller, Saleor included, was told success)."""

    monkeypatch.setattr(operations, "CMIClient", late_refund_client())
    operation = services.refund(captured, Decimal(20), key="late")
    assert (operation.state, operation.succeeded) == (Operation.SUCCEEDED, True)
    captured.refresh_from_db()
    # flagged (review 6): whoever the refresh told "failed" must hear it was done
    assert (captured.state, captured.refunded_amount) == (
        PaymentState.NEEDS_ATTENTION,
        Decimal(20),
    )
    assert ledger(sandbox_settings, captured.oid) == ["PreAuth", "PostAuth", "Credit"]


def test_a_refresh_does_not_settle_a_refund_sent_after_it_asked_cmi(
    captured: Payment, sandbox_settings: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refresh asks CMI for the order and its history (no refund); meanwhile a refund is
    sent, CMI makes it, and its answer is lost (``unknown``). The payment's status did
    not change, so the refresh went on and settled the refund ``failed`` from an answer
    older than it: the shop showed nothing refunded, the key was free again (a retry of
    the same request would be sent), and the amount refundable a second time."""

    class AnswerLost(CMIClient):
        def refund(self, oid: str, amount: Decimal, currency: Any = None) -> Any:
            super().refund(oid, amount, currency)  # CMI makes it...
            raise APITransportError("no usable answer from CMI", retryable=False)  # ...lost

    ask = sync._ask

    def slow_ask(client: Any, payment: Payment, **kw: Any) -> Any:
        answer = ask(client, payment, **kw)  # POST, no refund yet
        with monkeypatch.context() as patch:
            patch.setattr(operations, "CMIClient", AnswerLost)
            with pytest.raises(APITransportError):
                services.refund(Payment.objects.get(pk=payment.pk), Decimal(20), key="lost")
        return answer

    # an older refund whose answer was lost an hour ago (CMI never made it): the refresh
    # asks for the history because of it, and settles it
    old = Operation.objects.create(
        payment=captured, kind="refund", amount=Decimal(10), key="old", state=Operation.UNKNOWN
    )
    Operation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=1))
    monkeypatch.setattr(sync, "_ask", slow_ask)
    with pytest.raises(services.OperationPendingError, match="refresh again"):
        services.refresh(captured)
    operation = captured.operations.get(key="lost")
    assert operation.state == Operation.UNKNOWN  # not settled from an answer older than it
    with pytest.raises(services.OperationPendingError):  # its key stays blocked
        services.refund(captured, Decimal(20), key="lost")
    assert ledger(sandbox_settings, captured.oid) == ["PreAuth", "PostAuth", "Credit"]


def test_a_caller_that_can_wait_briefly_is_told_pending_not_held_for_the_whole_deadline(
    captured: Payment, sandbox_settings: Sandbox
) -> None:
    """The same key's first call is still running (a pending operation created now):
    a caller with ``within`` (Saleor, which gives up after 18 s) gets
    :class:`OperationPendingError` after about that long, not after the call's whole
    deadline (35 s here), and nothing is sent."""
    first = Operation.objects.create(
        payment=captured,
        kind="refund",
        amount=Decimal("10.00"),
        key="K-1",
        user="saleor",
        state=Operation.PENDING,
        succeeded=False,
    )
    sent = ledger(sandbox_settings, captured.oid)
    started = time.monotonic()
    with pytest.raises(services.OperationPendingError):
        services.refund(captured, Decimal("10.00"), key="K-1", within=0.5)
    assert time.monotonic() - started < 10  # the call's deadline is 35 s
    assert list(Operation.objects.filter(payment=captured)) == [first]
    assert ledger(sandbox_settings, captured.oid) == sent


def test_a_refresh_asked_within_a_budget_shares_it_between_status_and_history(
    captured: Payment, sandbox_settings: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``refresh(within=...)`` with an open refund asks CMI twice (status, then history).
    Each call used to get the whole budget, so a slow CMI held the caller (Saleor's
    transactionProcess) for twice what Saleor waits. The history call now gets what the
    status call left: the refresh ends by the budget, records a failed status
    operation, and settles nothing."""
    old = Operation.objects.create(
        payment=captured, kind="refund", amount=Decimal(10), key="old", state=Operation.UNKNOWN
    )
    Operation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=1))
    handle = sandbox_settings.api.handle

    def slow(body: bytes, content_type: str) -> bytes:
        time.sleep(0.7 if b"ORDERSTATUS" in body else 3)
        return handle(body, content_type)

    monkeypatch.setattr(sandbox_settings.api, "handle", slow)
    started = time.monotonic()
    with pytest.raises(APIError, match="history query"):
        services.refresh(captured, within=1.2)
    elapsed = time.monotonic() - started
    assert elapsed < 1.2 + 0.5, f"the refresh took {elapsed:.2f}s of a 1.2 s budget"
    old.refresh_from_db()
    assert old.state == Operation.UNKNOWN  # nothing settled from a missing history
    (status,) = Operation.objects.filter(payment=captured, kind="status")
    assert status.state == Operation.FAILED
    captured.refresh_from_db()
    assert captured.state == PaymentState.CAPTURED
