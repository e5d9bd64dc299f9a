"""Signals sent after the platform hook, inside the same transaction.

Every signal is sent with ``sender=Payment`` and ``payment=``; the extra keyword
arguments are those of the matching :class:`~cmi_django.hooks.PaymentHook` method:
``result`` (authorised, declined), ``amount`` (captured, refunded), ``reason``
(needs_attention). Receivers that send e-mail should wrap it in
``transaction.on_commit``: the transaction may still roll back.
"""

from __future__ import annotations

from django.dispatch import Signal

payment_authorised = Signal()
payment_captured = Signal()
payment_declined = Signal()
payment_refunded = Signal()
payment_voided = Signal()
payment_needs_attention = Signal()
