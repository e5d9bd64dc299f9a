"""Signals for site developers: fulfil an order, send a receipt, update a CRM.

Sent by :class:`cmi_wagtail.hooks.WagtailHook` for payments made on Wagtail pages, inside
the transaction that holds the payment locked (wrap e-mail and other side effects in
``transaction.on_commit``; an exception from a receiver rolls the change back and, for a
callback, makes the reply to CMI ``FAILURE`` so CMI tries again).

``sender`` is the specific class of the page the payment was made on (``PaymentPage``, a
site's own subclass, or the page class carrying a pay button; ``WagtailPayment`` if the
page was deleted). Keyword arguments: ``page`` (the specific page or None), ``payment``
(a :class:`cmi_wagtail.models.WagtailPayment`), and ``result`` (authorised, declined:
the verified :class:`cmi_core.CallbackResult`), ``amount`` (captured, refunded: this
operation's amount as a ``Decimal``).

The shared layer's own signals (:mod:`cmi_django.signals`, ``sender=Payment``) are sent
too, for every platform.
"""

from __future__ import annotations

from django.dispatch import Signal

__all__ = [
    "payment_authorised",
    "payment_captured",
    "payment_declined",
    "payment_needs_attention",
    "payment_refunded",
    "payment_voided",
]

payment_authorised = Signal()
payment_captured = Signal()
payment_declined = Signal()
payment_refunded = Signal()
payment_voided = Signal()
payment_needs_attention = Signal()
