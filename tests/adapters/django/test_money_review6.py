"""Review 6: the money-path fixes of review 5 attacked (operations, refresh, Saleor's budget).

CMI is the emulator (``cmi_core.sandbox``), its ledger the proof of what was sent.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from cmi_django import operations, services
from cmi_django.models import Operation, Payment

from cmi_core import CMIClient, PaymentState
from cmi_core.sandbox import Sandbox
from tests.adapters.django.test_money_once import AMOUNT, ledger, seed_order

pytestmark = pytest.mark.django_db


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


def test_a_late_approval_of_a_failed_refund_whose_key_was_sent_again_is_recorded_and_flagged(
    captured: Payment, sandbox_settings: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refund A (key K) outlives its deadline; a refresh settles it ``failed``, which frees
    K; the same request comes again and refund B (key K) is sent and approved; then CMI
    approves A too. CMI refunded twice: the shop must record both and ask staff to look.
    Before, recording A as succeeded broke the one-key constraint (an IntegrityError: A's
    approval was lost, the payment showed one refund of the two CMI made, and the caller
    got a 500)."""
    first = [True]

    class Late(CMIClient):
        def refund(self, oid: str, amount: Decimal, currency: Any = None) -> Any:
            if first[0]:
                first[0] = False
                Operation.objects.filter(kind="refund", state=Operation.PENDING).update(
                    state=Operation.FAILED, error="settled from CMI's order history: no trace"
                )
                again = services.refund(Payment.objects.get(pk=captured.pk), amount, key="K")
                assert again.state == Operation.SUCCEEDED
            return super().refund(oid, amount, currency)

    monkeypatch.setattr(operations, "CMIClient", Late)
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
