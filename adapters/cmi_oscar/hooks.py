"""What a CMI payment's moves do to the Oscar order (the ``cmi_django`` hook for "oscar").

``cmi_django`` hands the hook one :class:`~cmi_django.hooks.PaymentChange` per change,
inside the transaction that holds the payment row locked (a duplicate callback changes
nothing and calls nothing). Each effect records Oscar's own payment models, as Oscar's
checkout would:

- ``authorised``: the order is placed (:func:`cmi_oscar.placement.place_order`, exactly
  once), with a ``Source`` of type "CMI" whose ``amount_allocated`` is the authorised
  amount, an "Authorise" ``Transaction`` and an "Authorised" ``PaymentEvent``; with auto
  capture the same change also holds ``captured``, recorded on that source at once;
  the order-placed e-mail is queued as a task (:mod:`cmi_oscar.tasks`), sent after
  CMI's reply;
- ``captured``: the source is debited ("Debit" transaction, "Paid" event);
- ``refunded``: the source records the refund ("Refund" transaction, "Refunded" event);
- ``voided``: a "Void" transaction and a "Voided" event;
- ``flagged``: a note on the order for staff, when there is an order.

Each move also sets the order status from ``CMI_OSCAR_STATUS`` (:mod:`cmi_oscar.conf`).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cmi_django.hooks import PaymentChange, PaymentHook
from oscar.core.loading import get_model

from cmi_core.effects import EffectKind
from cmi_oscar import conf
from cmi_oscar.placement import (
    find_order,
    place_order,
    record_capture,
    record_void,
)

if TYPE_CHECKING:
    from cmi_django.models import Payment

    from cmi_core.effects import Effect

logger = logging.getLogger("cmi_oscar")

__all__ = ["DuplicatePaymentError", "OscarPaymentHook"]

SOURCE_TYPE_CODE = "cmi"
SOURCE_TYPE_NAME = "CMI"


class DuplicatePaymentError(Exception):
    """A second attempt of an order number was approved after the order was paid.

    Raised inside the callback's transaction: ``cmi_django`` rolls back and answers
    ``FAILURE``, so CMI does not capture the second payment (nothing is taken twice); then
    it flags the payment (needs attention, with this message; a note on the order) so that
    staff void the authorisation. Its callback log row shows this message too.
    """


def _source(order: Any, payment: Payment, *, new_order: bool = False) -> Any:
    """The order's CMI ``Source`` for this payment (one per attempt that paid).

    ``new_order``: the order was placed in this transaction, so it has no source yet.
    """
    source_model = get_model("payment", "Source")
    source_type, _ = get_model("payment", "SourceType")._default_manager.get_or_create(
        code=SOURCE_TYPE_CODE, defaults={"name": SOURCE_TYPE_NAME}
    )
    values = {"currency": order.currency, "label": payment.masked_pan or ""}
    if new_order:
        return source_model._default_manager.create(
            order=order, source_type=source_type, reference=payment.oid, **values
        )
    source, _ = source_model._default_manager.get_or_create(
        order=order, source_type=source_type, reference=payment.oid, defaults=values
    )
    return source


def _event(
    order: Any, name: str, amount: Decimal, reference: str, lines: list[Any] | None = None
) -> list[Any]:
    """A payment event over every line of the order; returns the lines (to reuse)."""
    event_type, _ = get_model("order", "PaymentEventType")._default_manager.get_or_create(name=name)
    event = get_model("order", "PaymentEvent")._default_manager.create(
        order=order, event_type=event_type, amount=amount, reference=reference
    )
    if lines is None:
        lines = list(order.lines.all())
    quantity_model = get_model("order", "PaymentEventQuantity")
    quantity_model._default_manager.bulk_create(
        [quantity_model(event=event, line=line, quantity=line.quantity) for line in lines]
    )
    return lines


def _note(order: Any, message: str) -> None:
    order.notes.create(note_type="CMI", message=message)


def _set_status(order: Any, state: str) -> None:
    """Move the order to ``CMI_OSCAR_STATUS[state]`` when the pipeline allows it."""
    status = conf.status_for(state)
    if not status or order.status == status:
        return
    if not order.pipeline:  # no pipeline: Oscar has no rule to break
        old = order.status
        order.status = status
        order.save(update_fields=["status"])
        order._create_order_status_change(old, status)
        return
    if status in order.available_statuses():
        order.set_status(status)
        return
    logger.warning("Order #%s: status %r not reachable from %r", order.number, status, order.status)
    _note(
        order,
        f"CMI: payment {state}; status {status!r} is not reachable from {order.status!r} "
        "under OSCAR_ORDER_STATUS_PIPELINE, left unchanged.",
    )


def _debit(payment: Payment, amount: Decimal, placed: tuple[Any, list[Any] | None] | None) -> None:
    """Record a capture: "Debit" transaction, "Paid" event, order status.

    ``placed``: the source and order lines the same change's authorisation just wrote
    (auto capture), reused when they belong to the order (read again: an
    ``order_placed`` receiver may have changed it).
    """
    order = find_order(payment)
    if order is None:
        logger.error("CMI payment %s captured with no Oscar order", payment.oid)
        return
    if placed is not None and placed[0].order_id == order.pk:
        source, lines = placed
    else:
        source, lines = _source(order, payment), None
    source.debit(amount, reference=payment.trans_id or "")
    _event(order, "Paid", amount, payment.trans_id or payment.oid, lines)
    record_capture(order, source, payment, amount)
    _set_status(order, "captured")


class OscarPaymentHook(PaymentHook):
    """The Oscar adapter's :class:`cmi_django.hooks.PaymentHook`."""

    def on_authorised(self, change: PaymentChange, effect: Effect) -> None:
        payment = change.payment
        # place_order holds the basket's row lock to the end of the transaction, so this
        # check and the order's creation are one step for every attempt of the order.
        order, created = place_order(payment, status=conf.status_for("authorised"))
        others = order.sources.filter(source_type__code=SOURCE_TYPE_CODE).exclude(
            reference=payment.oid
        )
        if not created and others.exists():
            raise DuplicatePaymentError(
                f"order #{order.number} is already paid by another CMI payment; "
                f"{payment.oid} is not captured"
            )
        amount = payment.authorised_amount or payment.amount
        source = _source(order, payment, new_order=created)
        lines = None
        if source.amount_allocated < amount:
            source.allocate(amount - source.amount_allocated, reference=payment.trans_id or "")
            lines = _event(order, "Authorised", amount, payment.trans_id or payment.oid)
        if created and conf.send_confirmation():
            from cmi_django.tasks import enqueue

            from cmi_oscar import tasks

            enqueue(tasks.send_confirmation, order.pk, payment.lang)  # after CMI's reply
        captured = change.effect(EffectKind.CAPTURED)
        if captured is not None and captured.amount:  # auto capture: the same change
            _debit(payment, captured.amount, (source, lines))

    def on_captured(self, change: PaymentChange, effect: Effect) -> None:
        if change.has(EffectKind.AUTHORISED):
            return  # recorded with the authorisation, by on_authorised
        _debit(change.payment, effect.amount or Decimal(0), None)

    def on_refunded(self, change: PaymentChange, effect: Effect) -> None:
        payment = change.payment
        order = find_order(payment)
        if order is None or effect.amount is None:
            return
        _source(order, payment).refund(effect.amount, reference=payment.trans_id or "")
        _event(order, "Refunded", effect.amount, payment.oid)
        _set_status(order, str(payment.state))

    def on_voided(self, change: PaymentChange, effect: Effect) -> None:
        payment = change.payment
        order = find_order(payment)
        if order is None:
            return
        amount = record_void(order, _source(order, payment), payment)
        _event(order, "Voided", amount, payment.oid)
        _set_status(order, "voided")

    def on_flagged(self, change: PaymentChange, effect: Effect) -> None:
        payment = change.payment
        order = find_order(payment)
        if order is not None:
            _note(order, f"CMI payment {payment.oid} needs attention: {effect.reason}")
