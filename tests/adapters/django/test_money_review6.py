"""Review 6: the money-path fixes of review 5 attacked (operations, refresh, Saleor's budget).

CMI is the emulator (``cmi_core.sandbox``), its ledger the proof of what was sent.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from cmi_django import operations, services
from cmi_django.actions import staff_action
from cmi_django.models import Operation, Payment
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from cmi_core import (
    APITransportError,
    CMIClient,
    PaymentState,
    TransitionError,
    ValidationError,
)
from cmi_core.sandbox import Sandbox
from tests.adapters.django.conftest import late_refund_client
from tests.adapters.django.test_money_once import AMOUNT, ledger
from tests.adapters.django.testapp.hooks import RecordingHook

pytestmark = pytest.mark.django_db


def test_a_late_approval_of_a_failed_refund_whose_key_was_sent_again_is_recorded_and_flagged(
    captured: Payment, sandbox_settings: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refund A (key K) outlives its deadline; a refresh settles it ``failed``, which frees
    K; the same request comes again and refund B (key K) is sent and approved; then CMI
    approves A too. CMI refunded twice: the shop must record both and ask staff to look.
    Before, recording A as succeeded broke the one-key constraint (an IntegrityError: A's
    approval was lost, the payment showed one refund of the two CMI made, and the caller
    got a 500)."""

    def same_request_again(amount: Decimal) -> None:
        again = services.refund(Payment.objects.get(pk=captured.pk), amount, key="K")
        assert again.state == Operation.SUCCEEDED

    monkeypatch.setattr(operations, "CMIClient", late_refund_client(same_request_again))
    operation = services.refund(captured, Decimal(20), key="K")
    assert (operation.state, operation.succeeded) == (Operation.SUCCEEDED, True)
    assert ledger(sandbox_settings, captured.oid) == ["PreAuth", "PostAuth", "Credit", "Credit"]
    captured.refresh_from_db()
    assert captured.refunded_amount == Decimal(40)  # what CMI gave back, both refunds
    assert captured.state == PaymentState.NEEDS_ATTENTION
    assert "twice" in captured.attention_reason
    done = captured.operations.filter(kind="refund", succeeded=True)
    assert done.count() == 2
    assert captured.operations.filter(kind="refund", key="K", succeeded=True).count() == 1


@pytest.mark.parametrize(
    "error",
    [
        ImproperlyConfigured("EMAIL_HOST is not set"),
        ValidationError("amount", "a receiver's own check"),
        TransitionError("authorised", "capture", "a receiver's own bookkeeping"),
        APITransportError("a receiver asked CMI something", retryable=True),
    ],
    ids=["improperly-configured", "validation", "transition", "api"],
)
def test_a_staff_capture_cmi_made_is_reported_accepted_whatever_the_hook_raises_after(
    authorised: Payment,
    sandbox_settings: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    """CMI captured; then the platform hook (or a shop's receiver) raised an error of a
    kind staff_action also expects before sending. Staff was told "Not possible now",
    "CMI refused" or "CMI could not be reached" for a capture CMI made: the next click, a
    new form and key, could send a refund or capture again. The message says CMI
    accepted it."""

    def broken(self: Any, change: Any, effect: Any) -> None:
        raise error

    monkeypatch.setattr(RecordingHook, "on_captured", broken)
    result = staff_action(authorised, "capture", "", user="staff", key="k")
    assert "CMI accepted the capture" in result.message
    assert authorised.state == PaymentState.CAPTURED
    assert ledger(sandbox_settings, authorised.oid)[-1] == "PostAuth"


def test_a_late_approval_already_counted_by_a_later_refresh_is_not_counted_twice(
    captured: Payment, sandbox_settings: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refund A outlives its deadline: a refresh settles it ``failed`` (CMI's history did
    not show it yet); a second refresh then finds CMI's Credit and takes CMI's refunded
    total (20); then CMI's approval of A arrives. Applying it on top counted the 20 twice
    (40 refunded in the shop and told to the platform, 20 at CMI). A is recorded as done,
    the amounts stay CMI's, and staff is asked to look."""

    class Late(CMIClient):
        def refund(self, oid: str, amount: Decimal, currency: Any = None) -> Any:
            # the call outlives its deadline; a refresh finds no Credit and fails it
            Operation.objects.filter(kind="refund", state=Operation.PENDING).update(
                created_at=timezone.now() - timedelta(hours=1)
            )
            services.refresh(Payment.objects.get(pk=captured.pk))
            assert Operation.objects.get(kind="refund").state == Operation.FAILED
            result = super().refund(oid, amount, currency)  # CMI refunds; its answer is slow
            services.refresh(Payment.objects.get(pk=captured.pk))  # sees the Credit: 20
            assert Payment.objects.get(pk=captured.pk).refunded_amount == Decimal(20)
            return result

    monkeypatch.setattr(operations, "CMIClient", Late)
    operation = services.refund(captured, Decimal(20), key="late")
    assert (operation.state, operation.succeeded) == (Operation.SUCCEEDED, True)
    assert ledger(sandbox_settings, captured.oid) == ["PreAuth", "PostAuth", "Credit"]
    captured.refresh_from_db()
    assert captured.refunded_amount == Decimal(20)  # CMI's, once
    assert captured.state == PaymentState.NEEDS_ATTENTION
    services.refresh(captured)  # staff refreshes: CMI's amounts, out of NEEDS_ATTENTION
    captured.refresh_from_db()
    assert (captured.state, captured.refunded_amount) == (
        PaymentState.PARTIALLY_REFUNDED,
        Decimal(20),
    )


@pytest.mark.parametrize(
    ("retryable", "state"),
    [(False, Operation.UNKNOWN), (True, Operation.FAILED)],
    ids=["cut-short-after-sending", "connect-timeout"],
)
def test_a_call_cut_short_by_within_is_never_sent_twice(
    captured: Payment,
    sandbox_settings: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    retryable: bool,
    state: str,
) -> None:
    """``within`` cuts the call's deadline and timeouts; the call then gives up. Cut
    short after sending, its outcome is ``unknown``: the same request again is refused
    (pending), nothing re-sent. A connect timeout sent nothing: ``failed``, and the same
    request again is sent once."""
    seen: list[tuple[float, float]] = []

    class Slow(CMIClient):
        def refund(self, oid: str, amount: Decimal, currency: Any = None) -> Any:
            seen.append((self._config.api_deadline, self._config.http_timeout))
            raise APITransportError("gave up", retryable=retryable)

    monkeypatch.setattr(operations, "CMIClient", Slow)
    with pytest.raises(APITransportError):
        services.refund(captured, Decimal(20), key="K", within=3)
    assert max(seen[0]) <= 3  # deadline and timeouts cut to what the caller can wait
    assert captured.operations.get(kind="refund").state == state
    monkeypatch.setattr(operations, "CMIClient", CMIClient)
    if retryable:
        again = services.refund(captured, Decimal(20), key="K", within=3)
        assert again.succeeded
        assert ledger(sandbox_settings, captured.oid) == ["PreAuth", "PostAuth", "Credit"]
    else:
        with pytest.raises(services.OperationPendingError):
            services.refund(captured, Decimal(20), key="K", within=3)
        assert ledger(sandbox_settings, captured.oid) == ["PreAuth", "PostAuth"]


def test_an_automatic_capture_cmi_made_is_not_flagged_as_failed_when_the_hook_raises(
    authorised: Payment, sandbox_settings: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The capture after an approval learned without a callback: CMI captured, then the
    platform hook raised. The payment was flagged "automatic capture ... failed", which
    invites staff to capture by other means; the flag says CMI captured it."""

    def broken(self: Any, change: Any, effect: Any) -> None:
        raise RuntimeError("the platform broke")

    monkeypatch.setattr(RecordingHook, "on_captured", broken)
    operations.capture_after_approval(authorised.pk, "okurl")
    assert ledger(sandbox_settings, authorised.oid)[-1] == "PostAuth"
    authorised.refresh_from_db()
    assert authorised.captured_amount == AMOUNT
    assert authorised.state == PaymentState.NEEDS_ATTENTION
    assert "failed" not in authorised.attention_reason.split(":")[0]
    assert "CMI captured" in authorised.attention_reason
