"""The optional e-mail receipt, sent once the card is authorised (site setting).

Sent after the transaction commits, in the payment's language, to the address the payer
typed; a failure to send is logged, never raised (the payment is already taken).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from cmi_django.display import format_money
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from cmi_wagtail.checkout import language

if TYPE_CHECKING:
    from cmi_django.models import Payment

    from cmi_wagtail.models import CMISettings

__all__ = ["receipts_enabled", "send_receipt"]

logger = logging.getLogger("cmi_wagtail")


def _settings(payment: Payment) -> CMISettings | None:
    from cmi_wagtail.models import CMISettings

    site_id = (payment.data or {}).get("site_id")
    return CMISettings.objects.filter(site_id=site_id).first() if site_id else None


def receipts_enabled(payment: Payment) -> bool:
    settings_row = _settings(payment)
    return bool(settings_row and settings_row.send_receipts and payment.email)


def send_receipt(payment_id: int) -> bool:
    """E-mail the receipt of a payment; True when sent."""
    from cmi_wagtail.models import WagtailPayment

    payment = WagtailPayment.objects.filter(pk=payment_id).first()
    if payment is None or not payment.email:
        return False
    settings_row = _settings(payment)
    with language(payment.lang):
        context = {
            "payment": payment,
            "amount": format_money(payment.amount, payment.currency),
            "page_title": payment.page_title(),
            "payer": payment.payer(),
        }
        subject = render_to_string("cmi_wagtail/email/receipt_subject.txt", context).strip()
        body = render_to_string("cmi_wagtail/email/receipt.txt", context)
    sender = (settings_row.receipt_from_email if settings_row else "") or getattr(
        settings, "DEFAULT_FROM_EMAIL", None
    )
    try:
        send_mail(" ".join(subject.split()), body, sender, [payment.email])
    except Exception:
        logger.exception("could not send the receipt of CMI payment %s", payment.oid)
        return False
    return True
