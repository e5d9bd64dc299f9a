"""The platform's half of the seam: one :class:`PaymentChange` in, the order updated."""

from __future__ import annotations

from cmi_django.hooks import PaymentChange, PaymentHook

from cmi_core import Effect

from .models import Order

PLATFORM = "reference"


class ShopHook(PaymentHook):
    """Runs inside the payment's transaction: raise, and the change rolls back."""

    def on_authorised(self, change: PaymentChange, effect: Effect) -> None:
        self._set(change, Order.PAID)

    def on_captured(self, change: PaymentChange, effect: Effect) -> None:
        self._set(change, Order.CAPTURED)

    def on_declined(self, change: PaymentChange, effect: Effect) -> None:
        reason = change.result.err_msg if change.result is not None else ""
        self._set(change, Order.NEW, note=reason)  # the shopper may try again

    def on_refunded(self, change: PaymentChange, effect: Effect) -> None:
        self._set(change, Order.REFUNDED, note=f"refunded {effect.amount}")

    def on_voided(self, change: PaymentChange, effect: Effect) -> None:
        self._set(change, Order.CANCELLED)

    def on_flagged(self, change: PaymentChange, effect: Effect) -> None:
        self._set(change, Order.CHECK, note=effect.reason or "")

    @staticmethod
    def _set(change: PaymentChange, status: str, note: str = "") -> None:
        Order.objects.filter(number=change.payment.reference).update(status=status, note=note[:255])
