"""The Wagtail platform hook: re-send the shared layer's news with the page attached.

Registered for ``platform="wagtail"`` from :meth:`cmi_wagtail.apps.CMIWagtailConfig.ready`.
Runs inside the payment's transaction (see :mod:`cmi_django.hooks`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cmi_django.hooks import PaymentChange, PaymentHook
from cmi_django.i18n import shopper_language
from django.dispatch import Signal

from cmi_wagtail import signals

if TYPE_CHECKING:
    from cmi_django.models import Payment

    from cmi_core.effects import Effect

__all__ = ["WagtailHook"]


def _page(payment: Payment) -> Any:
    from wagtail.models import Page

    page_id = (payment.data or {}).get("page_id")
    page = Page.objects.filter(pk=page_id).first() if page_id else None
    return page.specific if page is not None else None


def _send(signal: Signal, payment: Payment, **kwargs: Any) -> None:
    from cmi_wagtail.models import WagtailPayment

    page = _page(payment)
    proxy = WagtailPayment.objects.filter(pk=payment.pk).first() or payment
    sender = type(page) if page is not None else WagtailPayment
    with shopper_language(payment):  # receivers' messages in the payer's language
        signal.send(sender, page=page, payment=proxy, **kwargs)


class WagtailHook(PaymentHook):
    """Sends :mod:`cmi_wagtail.signals`; schedules the e-mail receipt when enabled."""

    def on_authorised(self, change: PaymentChange, effect: Effect) -> None:
        payment = change.payment
        _send(signals.payment_authorised, payment, result=change.result)
        from cmi_wagtail.receipts import receipts_enabled

        if receipts_enabled(payment):
            from cmi_django.tasks import enqueue

            from cmi_wagtail import tasks

            enqueue(tasks.send_receipt, payment.pk)

    def on_captured(self, change: PaymentChange, effect: Effect) -> None:
        _send(signals.payment_captured, change.payment, amount=effect.amount)

    def on_declined(self, change: PaymentChange, effect: Effect) -> None:
        _send(signals.payment_declined, change.payment, result=change.result)

    def on_refunded(self, change: PaymentChange, effect: Effect) -> None:
        _send(signals.payment_refunded, change.payment, amount=effect.amount)

    def on_voided(self, change: PaymentChange, effect: Effect) -> None:
        _send(signals.payment_voided, change.payment)

    def on_flagged(self, change: PaymentChange, effect: Effect) -> None:
        _send(signals.payment_needs_attention, change.payment, reason=effect.reason)
