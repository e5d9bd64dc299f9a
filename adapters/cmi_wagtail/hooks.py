"""The Wagtail platform hook: re-send the shared layer's news with the page attached.

Registered for ``platform="wagtail"`` from :meth:`cmi_wagtail.apps.CMIWagtailConfig.ready`.
Runs inside the payment's transaction (see :mod:`cmi_django.hooks`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cmi_django.hooks import PaymentHook
from cmi_django.i18n import shopper_language
from django.db import transaction
from django.dispatch import Signal

from cmi_wagtail import signals

if TYPE_CHECKING:
    from cmi_django.models import Payment

    from cmi_core import CallbackResult

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

    def authorised(self, payment: Payment, result: CallbackResult) -> None:
        _send(signals.payment_authorised, payment, result=result)
        from cmi_wagtail.receipts import receipts_enabled, send_receipt

        if receipts_enabled(payment):
            pk = payment.pk
            transaction.on_commit(lambda: send_receipt(pk))

    def captured(self, payment: Payment, amount: Decimal) -> None:
        _send(signals.payment_captured, payment, amount=amount)

    def declined(self, payment: Payment, result: CallbackResult) -> None:
        _send(signals.payment_declined, payment, result=result)

    def refunded(self, payment: Payment, amount: Decimal) -> None:
        _send(signals.payment_refunded, payment, amount=amount)

    def voided(self, payment: Payment) -> None:
        _send(signals.payment_voided, payment)

    def needs_attention(self, payment: Payment, reason: str) -> None:
        _send(signals.payment_needs_attention, payment, reason=reason)
