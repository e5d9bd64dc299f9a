"""Signals sent after the platform hook, inside the same transaction.

Every signal is sent with ``sender=Payment`` and ``payment=``. ``payment_changed`` comes
once per change with ``change=`` (the :class:`~cmi_django.hooks.PaymentChange` the hook
got); then one signal per effect, with ``result`` (authorised, declined: CMI's result,
None when there is none), ``amount`` (captured, refunded: this move's amount) or
``reason`` (needs_attention, the ``flagged`` effect). Receivers that send e-mail should queue
it as a task (:func:`cmi_django.tasks.enqueue`, which also keeps it off CMI's reply) or
at least wrap it in ``transaction.on_commit``: the transaction may still roll back.
"""

from __future__ import annotations

from django.dispatch import Signal

payment_changed = Signal()
payment_authorised = Signal()
payment_captured = Signal()
payment_declined = Signal()
payment_refunded = Signal()
payment_voided = Signal()
payment_needs_attention = Signal()
