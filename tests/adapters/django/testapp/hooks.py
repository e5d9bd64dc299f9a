from __future__ import annotations

from typing import Any

from cmi_django.hooks import PaymentChange, PaymentHook, RetryableHookError
from cmi_django.models import Payment

from cmi_core.effects import Effect

from .models import HookCall


class HookFailedError(RuntimeError):
    pass


class RecordingHook(PaymentHook):
    """Records each call; raises in ``authorised`` on ``data["hook_raises"]``/``["hook_retry"]``."""

    def _record(self, payment: Payment, method: str, amount: Any = None, detail: str = "") -> None:
        HookCall.objects.create(oid=payment.oid, method=method, amount=amount, detail=detail)

    def on_authorised(self, change: PaymentChange, effect: Effect) -> None:
        payment, result = change.payment, change.result
        assert result is not None
        self._record(payment, "authorised", result.amount, result.trans_id)
        if payment.data.get("hook_raises"):
            raise HookFailedError("the platform could not place the order")
        if payment.data.get("hook_retry"):
            raise RetryableHookError("the platform is down for a while")

    def on_captured(self, change: PaymentChange, effect: Effect) -> None:
        self._record(change.payment, "captured", effect.amount)

    def on_declined(self, change: PaymentChange, effect: Effect) -> None:
        assert change.result is not None
        self._record(change.payment, "declined", None, change.result.proc_return_code)

    def on_refunded(self, change: PaymentChange, effect: Effect) -> None:
        self._record(change.payment, "refunded", effect.amount)

    def on_voided(self, change: PaymentChange, effect: Effect) -> None:
        self._record(change.payment, "voided")

    def on_flagged(self, change: PaymentChange, effect: Effect) -> None:
        self._record(change.payment, "needs_attention", None, effect.reason)
