"""Template filters for Oscar pages: ``{% load cmi_oscar_tags %}``.

``{{ order.status|order_status }}``: Oscar keeps an order's status as the plain text of
``OSCAR_ORDER_STATUS_PIPELINE`` and shows it as it is; this shows it translated
(:data:`cmi_oscar.conf.STATUS_LABELS`), or as it is when the shop uses a status of its own.
"""

from __future__ import annotations

from django import template

from cmi_oscar.conf import status_label

register = template.Library()

__all__ = ["order_status"]


@register.filter
def order_status(status: str | None) -> str:
    """``"Cancelled"`` -> "Annulée" (French), "ملغاة" (Arabic)."""
    return status_label(status) if status else ""
