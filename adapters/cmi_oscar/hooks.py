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
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cmi_django.hooks import PaymentChange, PaymentHook
from cmi_django.i18n import isolate, state_label
from django.db import connections
from django.utils.translation import gettext
from oscar.apps.order.abstract_models import AbstractOrder
from oscar.apps.order.signals import order_status_changed
from oscar.core.loading import get_model

from cmi_core.effects import EffectKind
from cmi_oscar import conf
from cmi_oscar.placement import (
    find_order,
    place_order,
    record_capture,
    record_void,
)
from cmi_oscar.records import (
    has_oscars_quantity_columns,
    insert_placed,
    saves_plainly,
    write_alias,
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


def _type_ids(*, events: Sequence[str], source: bool = True) -> tuple[int, dict[str, int]]:
    """The CMI ``SourceType``'s id and the ``PaymentEventType`` ids by name, in one query.

    Read on every change rather than cached in the process: a cached id would outlive
    its row (deleted by staff, or rolled back by a test) and break the foreign keys.
    A type missing the first time is created (``get_or_create``, as Oscar's examples do).
    The query is written out (one ``UNION ALL`` over the two tables, their names and
    columns from the models, so forked models work): the ORM took longer to compile it
    than the database to answer it.
    """
    source_type_model = get_model("payment", "SourceType")
    event_type_model = get_model("order", "PaymentEventType")
    connection = connections[event_type_model._default_manager.db]
    quote = connection.ops.quote_name
    parts: list[str] = []
    params: list[str] = []
    for table, (wanted, model, field, names) in enumerate(
        (
            (source, source_type_model, "code", [SOURCE_TYPE_CODE]),
            (bool(events), event_type_model, "name", list(events)),
        )
    ):
        if wanted:
            column = quote(model._meta.get_field(field).column)
            marks = ", ".join(["%s"] * len(names))
            parts.append(
                f"SELECT {table}, {column}, {quote(model._meta.pk.column)} "  # noqa: S608 - identifiers from the models, quoted; values are parameters
                f"FROM {quote(model._meta.db_table)} WHERE {column} IN ({marks})"
            )
            params += names
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        found = {(table, key): pk for table, key, pk in cursor.fetchall()}
    source_id = found.get((0, SOURCE_TYPE_CODE))
    if source and source_id is None:
        source_id = source_type_model._default_manager.get_or_create(
            code=SOURCE_TYPE_CODE, defaults={"name": SOURCE_TYPE_NAME}
        )[0].pk
    event_ids = {}
    for name in events:
        event_id = found.get((1, name))
        if event_id is None:
            event_id = event_type_model._default_manager.get_or_create(name=name)[0].pk
        event_ids[name] = event_id
    return source_id or 0, event_ids


def _source(order: Any, payment: Payment, source_type_id: int | None = None) -> Any:
    """The order's CMI ``Source`` for this payment (one per attempt that paid)."""
    if source_type_id is None:
        source_type_id = _type_ids(events=())[0]
    source, _ = get_model("payment", "Source")._default_manager.get_or_create(
        order=order,
        source_type_id=source_type_id,
        reference=payment.oid,
        defaults={"currency": order.currency, "label": payment.masked_pan or ""},
    )
    return source


def _event(order: Any, name: str, amount: Decimal, reference: str) -> None:
    """A payment event over every line of the order."""
    _, type_ids = _type_ids(events=(name,), source=False)
    _events(order, [(type_ids[name], amount, reference)])


def _event_rows(order: Any, events: Sequence[tuple[int, Decimal, str]]) -> list[Any]:
    """Unsaved payment events of ``order`` from (type id, amount, reference)."""
    event_model = get_model("order", "PaymentEvent")
    return [
        event_model(order=order, event_type_id=type_id, amount=amount, reference=reference)
        for type_id, amount, reference in events
    ]


def _events(order: Any, events: Sequence[tuple[int, Decimal, str]]) -> None:
    """Payment events (type id, amount, reference) over every line of the order."""
    _save_events(order, _event_rows(order, events))


def _save_events(order: Any, rows: Sequence[Any]) -> None:
    """Unsaved payment events of ``order`` written together, over every line of the
    order: one INSERT for the events (where the database returns their ids, and the
    model saves plainly: :func:`cmi_oscar.records.saves_plainly`), one for their line
    quantities (:func:`_quantities`)."""
    if not rows:
        return
    event_model = type(rows[0])
    database = connections[write_alias(event_model, order)]
    if (
        len(rows) > 1
        and database.features.can_return_rows_from_bulk_insert
        and saves_plainly(event_model)
    ):
        event_model._default_manager.bulk_create(rows)
    else:
        for row in rows:
            row.save()
    _quantities(order, rows)


def _quantities(order: Any, events: Sequence[Any]) -> None:
    """Each event's ``PaymentEventQuantity`` rows, one per line of the order with the
    line's quantity, as Oscar's ``create_payment_event`` writes them.

    One ``INSERT ... SELECT`` that takes the lines from the database rather than reading
    them first (the statement written out, its table and column names from the models,
    so forked models work). A quantity model with columns of its own beyond Oscar's (a
    fork's, whose defaults only Python knows) is written through the ORM instead, and
    one with a ``save`` of its own or save receivers row by row with ``save``, as
    Oscar's ``create_payment_event`` does.
    """
    quantity_model = get_model("order", "PaymentEventQuantity")
    meta = quantity_model._meta
    line_model = order.lines.model
    plain = saves_plainly(quantity_model)
    if not has_oscars_quantity_columns(quantity_model) or not meta.pk.db_returning or not plain:
        lines = list(order.lines.order_by().values_list("pk", "quantity"))
        rows = [
            quantity_model(event=event, line_id=line_id, quantity=quantity)
            for event in events
            for line_id, quantity in lines
        ]
        if plain:
            quantity_model._default_manager.bulk_create(rows)
        else:
            for row in rows:
                row.save()
        return
    event_model = meta.get_field("event").related_model
    connection = connections[write_alias(quantity_model, order)]
    quote = connection.ops.quote_name

    def column(model: Any, name: str) -> str:
        return quote(model._meta.get_field(name).column)

    event_id, line_id = quote(event_model._meta.pk.column), quote(line_model._meta.pk.column)
    events_table, lines_table = (quote(m._meta.db_table) for m in (event_model, line_model))
    columns = ", ".join(column(quantity_model, name) for name in ("event", "line", "quantity"))
    marks = ", ".join(["%s"] * len(events))
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608 - identifiers from the models, quoted; values are parameters
        f"SELECT e.{event_id}, l.{line_id}, l.{column(line_model, 'quantity')} "
        f"FROM {events_table} e INNER JOIN {lines_table} l "
        f"ON l.{column(line_model, 'order')} = e.{column(event_model, 'order')} "
        f"WHERE e.{event_id} IN ({marks})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [event.pk for event in events])


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
        _move_status(order, status)
        return
    logger.warning("Order #%s: status %r not reachable from %r", order.number, status, order.status)
    _note(
        order,
        gettext(
            "CMI: payment %(state)s; the status “%(status)s” cannot follow “%(current)s” "
            "under OSCAR_ORDER_STATUS_PIPELINE: left unchanged."
        )
        % {
            "state": state_label(state),
            "status": conf.status_label(status),
            "current": conf.status_label(order.status),
        },
    )


def _move_status(order: Any, status: str, *, written: bool = False, recorded: bool = False) -> None:
    """Oscar's ``Order.set_status`` (lines cascade, ``order_status_changed``, the status
    change record), writing the status column only: Oscar's own saves the whole row,
    with whatever else this copy of the order holds. A fork that overrides
    ``set_status`` keeps its own. ``written``: the column is already written (with the
    payment records, :func:`_written_status`); ``recorded``: so is the status change
    record (:func:`_status_change`)."""
    if type(order).set_status is not AbstractOrder.set_status:
        order.set_status(status)
        return
    old = order.status
    order.status = status
    if status in order.cascade:
        line_status = order.cascade[status]
        for line in order.lines.all():
            if line_status in line.available_statuses():
                line.status = line_status
                line.save(update_fields=["status"])
    if not written:
        order.save(update_fields=["status"])
    order_status_changed.send(sender=order, order=order, old_status=old, new_status=status)
    if not recorded:
        order._create_order_status_change(old, status)


def _status_change(order: Any, status: str) -> Any:
    """The unsaved status change record of ``order``'s move to ``status`` (its current
    status the old one), to be written with the payment records and the status column
    (:func:`cmi_oscar.records.insert_placed`), or None where it must follow Oscar's
    signal as in ``Order.set_status``: a receiver of ``order_status_changed`` (Oscar
    writes the record after sending it, so a receiver could tell, or fail first), or a
    fork's own ``_create_order_status_change``."""
    model = type(order)
    if (
        model._create_order_status_change is not AbstractOrder._create_order_status_change
        or order_status_changed.has_listeners(order)
    ):
        return None
    return order.status_changes.model(order=order, old_status=order.status, new_status=status)


def _written_status(order: Any, state: str) -> str | None:
    """The status :func:`_set_status` would give ``order`` for ``state`` when the move
    is nothing but Oscar's: a pipeline that allows it, no line cascade, Oscar's own
    ``set_status`` and ``save``. Its UPDATE can then be written with the payment
    records (:func:`cmi_oscar.records.insert_placed`, which also requires no save
    receivers on the order), before the signal and the history row. Else None."""
    status = conf.status_for(state)
    model = type(order)
    if (
        not status
        or order.status == status
        or not order.pipeline
        or status in order.cascade
        or model.set_status is not AbstractOrder.set_status
        or model.save is not AbstractOrder.save
        or status not in order.available_statuses()
    ):
        return None
    return str(status)


def _record(
    order: Any,
    payment: Payment,
    *,
    created: bool,
    authorise: Decimal,
    debit: Decimal | None,
) -> None:
    """An authorisation (and, with auto capture, its capture) on the order, as Oscar's
    ``Source.allocate`` and ``Source.debit`` record them: the source's amounts, the
    "Authorise" and "Debit" transactions, the "Authorised" and "Paid" events, the status.

    Written together: the type ids in one query; for an order placed here on PostgreSQL,
    the source, transactions, events, their line quantities and (when the move is
    Oscar's plain one) the order's new status, with its status change record when
    nothing listens for Oscar's signal, in one statement (:mod:`cmi_oscar.records`);
    otherwise the source once with both amounts, the transactions in one INSERT, the
    events in one, their quantities in one. ``created``: the order was placed in this
    transaction, so it has no source yet, and ``order`` is the placed copy (its status
    and lines as Oscar left them; only the status column is written back).
    """
    reference = payment.trans_id or ""
    names = ["Authorised", "Paid"] if debit else ["Authorised"]
    source_type_id, type_ids = _type_ids(events=names)
    source_model = get_model("payment", "Source")
    if created:
        source = source_model(
            order=order,
            source_type_id=source_type_id,
            reference=payment.oid,
            currency=order.currency,
            label=payment.masked_pan or "",
        )
    else:
        source = _source(order, payment, source_type_id)
    allocate = max(authorise - source.amount_allocated, Decimal(0))
    source.amount_allocated += allocate
    if debit:
        source.amount_debited += debit
    transaction_model = get_model("payment", "Transaction")
    transactions = [
        transaction_model(source=source, txn_type=kind, amount=amount, reference=reference)
        for kind, amount in (
            (transaction_model.AUTHORISE, allocate),
            (transaction_model.DEBIT, debit),
        )
        if amount
    ]
    events = []
    if allocate:
        events.append((type_ids["Authorised"], authorise, reference or payment.oid))
    if debit:
        events.append((type_ids["Paid"], debit, reference or payment.oid))
    event_rows = _event_rows(order, events)
    status = _written_status(order, "captured") if created and debit else None
    change = _status_change(order, status) if status else None
    if created and insert_placed(
        source, transactions, event_rows, order_status=status, status_change=change
    ):
        written = status is not None  # all of it in one statement (PostgreSQL)
    else:
        written = False
        if created:
            source.save()
        elif allocate or debit:
            source.save(update_fields=["amount_allocated", "amount_debited"])
        if saves_plainly(transaction_model):
            transaction_model._default_manager.bulk_create(transactions)  # source id set now
        else:  # a fork's save or a shop's receivers: Oscar's checkout saves each
            for row in transactions:
                row.save()
        _save_events(order, event_rows)
    if debit:
        record_capture(order, source, payment, debit)
        if written and status:
            _move_status(
                order,
                status,
                written=True,
                recorded=change is not None and not change._state.adding,
            )
        else:
            _set_status(order, "captured")


def _debit(payment: Payment, amount: Decimal) -> None:
    """Record a capture after the authorisation: "Debit" transaction, "Paid" event, status."""
    order = find_order(payment)
    if order is None:
        logger.error("CMI payment %s captured with no Oscar order", payment.oid)
        return
    source = _source(order, payment)
    source.debit(amount, reference=payment.trans_id or "")
    _event(order, "Paid", amount, payment.trans_id or payment.oid)
    record_capture(order, source, payment, amount)
    _set_status(order, "captured")


class OscarPaymentHook(PaymentHook):
    """The Oscar adapter's :class:`cmi_django.hooks.PaymentHook`."""

    def on_authorised(self, change: PaymentChange, effect: Effect) -> None:
        payment = change.payment
        # place_order holds the basket's row lock to the end of the transaction, so this
        # check and the order's creation are one step for every attempt of the order.
        order, created = place_order(payment, status=conf.status_for("authorised"))
        if (
            not created
            and order.sources.filter(source_type__code=SOURCE_TYPE_CODE)
            .exclude(reference=payment.oid)
            .exists()
        ):
            raise DuplicatePaymentError(
                f"order #{order.number} is already paid by another CMI payment; "
                f"{payment.oid} is not captured"
            )
        captured = change.effect(EffectKind.CAPTURED)  # auto capture: the same change
        _record(
            order,
            payment,
            created=created,
            authorise=payment.authorised_amount or payment.amount,
            debit=captured.amount if captured is not None and captured.amount else None,
        )
        if created and conf.send_confirmation():
            from cmi_django.tasks import enqueue

            from cmi_oscar import tasks

            # After the commit; the placed order is handed over should the task run here
            # then (the immediate backend): not read again, its relations kept.
            enqueue(tasks.send_confirmation, order.pk, payment.lang, hand={"order": order})

    def on_captured(self, change: PaymentChange, effect: Effect) -> None:
        if change.has(EffectKind.AUTHORISED):
            return  # recorded with the authorisation, by on_authorised
        _debit(change.payment, effect.amount or Decimal(0))

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
            _note(
                order,
                gettext("CMI payment %(oid)s needs attention: %(reason)s")
                % {"oid": isolate(payment.oid), "reason": effect.reason},
            )
