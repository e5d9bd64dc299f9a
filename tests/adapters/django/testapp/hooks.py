from __future__ import annotations

from decimal import Decimal
from typing import Any

from cmi_django.hooks import PaymentHook, RetryableHookError
from cmi_django.models import Payment

from .models import HookCall


class HookFailedError(RuntimeError):
    pass


class RecordingHook(PaymentHook):
    """Records each call; raises in ``authorised`` on ``data["hook_raises"]``/``["hook_retry"]``."""

    def _record(self, payment: Payment, method: str, amount: Any = None, detail: str = "") -> None:
        HookCall.objects.create(oid=payment.oid, method=method, amount=amount, detail=detail)

    def authorised(self, payment: Payment, result: Any) -> None:
        self._record(payment, "authorised", result.amount, result.trans_id)
        if payment.data.get("hook_raises"):
            raise HookFailedError("the platform could not place the order")
        if payment.data.get("hook_retry"):
            raise RetryableHookError("the platform is down for a while")

    def captured(self, payment: Payment, amount: Decimal) -> None:
        self._record(payment, "captured", amount)

    def declined(self, payment: Payment, result: Any) -> None:
        self._record(payment, "declined", None, result.proc_return_code)

    def refunded(self, payment: Payment, amount: Decimal) -> None:
        self._record(payment, "refunded", amount)

    def voided(self, payment: Payment) -> None:
        self._record(payment, "voided")

    def needs_attention(self, payment: Payment, reason: str) -> None:
        self._record(payment, "needs_attention", None, reason)
