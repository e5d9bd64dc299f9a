"""The Oscar adapter's settings, read when used (never at import).

- ``CMI_OSCAR_CONFIG_KEY`` (default ``"default"``): which ``CMI_PAYMENTS`` entry pays
  Oscar orders.
- ``CMI_OSCAR_STATUS``: the order status to set for each payment state, merged over
  :data:`DEFAULT_STATUS`; ``None`` leaves the status alone. A status must be reachable
  under ``OSCAR_ORDER_STATUS_PIPELINE`` (when a pipeline is set); when it is not, the
  order keeps its status and gets a note for staff instead.
- ``CMI_OSCAR_SEND_CONFIRMATION`` (default True): send Oscar's order-placed e-mail once
  the order is placed (a task, sent after CMI's reply: :mod:`cmi_oscar.tasks`; a failure
  is logged, never raised).
"""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import pgettext, pgettext_lazy

__all__ = [
    "DEFAULT_STATUS",
    "STATUS_LABELS",
    "config_key",
    "send_confirmation",
    "status_for",
    "status_label",
]

#: Order status per payment state; see ``CMI_OSCAR_STATUS``.
DEFAULT_STATUS: dict[str, str | None] = {
    "authorised": "Pending",
    "captured": "Paid",
    "partially_refunded": None,
    "refunded": "Refunded",
    "voided": "Cancelled",
    "needs_attention": None,
}


#: Order status names for people, translated in cmi_oscar's catalogues (context "order
#: status"): the ones :data:`DEFAULT_STATUS` sets and the rest of the usual Oscar pipeline
#: (the demo shop's "Being processed" and "Complete").
STATUS_LABELS = {
    "Pending": pgettext_lazy("order status", "Pending"),
    "Paid": pgettext_lazy("order status", "Paid"),
    "Being processed": pgettext_lazy("order status", "Being processed"),
    "Complete": pgettext_lazy("order status", "Complete"),
    "Refunded": pgettext_lazy("order status", "Refunded"),
    "Cancelled": pgettext_lazy("order status", "Cancelled"),
}


def status_label(status: str) -> str:
    """An Oscar order status for people, in the active language.

    A status of the shop's own is looked up in the catalogues under the same context (so a
    shop can translate it in its own ``django.po``) and shown as it is otherwise.
    """
    label = STATUS_LABELS.get(status)
    return str(label) if label is not None else pgettext("order status", status)


def config_key() -> str:
    return str(getattr(settings, "CMI_OSCAR_CONFIG_KEY", "default"))


def status_for(state: str) -> str | None:
    """The Oscar order status for a payment state, or None to leave it."""
    mapping = {**DEFAULT_STATUS, **getattr(settings, "CMI_OSCAR_STATUS", {})}
    return mapping.get(state)


def send_confirmation() -> bool:
    return bool(getattr(settings, "CMI_OSCAR_SEND_CONFIRMATION", True))
