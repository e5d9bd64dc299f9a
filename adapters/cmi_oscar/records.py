"""The payment records of an order the callback just placed, in one statement (PostgreSQL).

When CMI's approval (guide §4.2.1) places the order, :func:`cmi_oscar.hooks._record` gives
it what Oscar's checkout would: a CMI ``Source`` (allocated, and debited when the capture
came with the approval), its "Authorise" and "Debit" ``Transaction`` rows, the
"Authorised" and "Paid" ``PaymentEvent`` rows and their ``PaymentEventQuantity`` per
order line. Through the ORM that is four INSERTs, each compiled in Python on every
callback; on PostgreSQL :func:`insert_placed` writes them as one statement (data-modifying
``WITH`` queries: the source's id feeds its transactions, the events' ids their line
quantities, and the database reads the order's lines itself).

The rows are the ORM's: every concrete field of the unsaved instances, prepared as the
ORM prepares an INSERT (``pre_save`` for ``auto_now_add``, then ``get_db_prep_save``), so
a forked model's own columns are written too; table and column names come from the
models, quoted; every value is a parameter. Only where nothing else would differ:
PostgreSQL, the models written to the order's database (the routers' ``db_for_write``,
never a read replica) with database-generated primary keys, no ``pre_save``/``post_save``
receivers on them and Oscar's own ``save`` (the ORM path then saves row by row, and the
shop's code hears each row: :func:`saves_plainly`), plain values (no expression, such as
a fork's ``db_default``), and Oscar's three quantity columns. Otherwise
:func:`insert_placed` returns False and the caller writes through the ORM. The order's
move to its "captured" status can ride along (its ``UPDATE``; Oscar's signal and the
history row follow in Python), when the order's model has no save receivers either; and
so can that history row (its ``OrderStatusChange``, an ``INSERT``), when the model of
those rows qualifies as the others do and nothing listens for Oscar's signal (the
caller's choice: :func:`cmi_oscar.hooks._record`), since Oscar writes the row after it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections, router
from django.db.models import Model
from django.db.models.signals import post_save, pre_save
from oscar.core.loading import get_model

__all__ = ["has_oscars_quantity_columns", "insert_placed", "saves_plainly", "write_alias"]


def write_alias(model: Any, order: Any) -> str:
    """The database the ORM writes ``model``'s rows of ``order`` to (the routers'
    ``db_for_write``, as ``save`` and ``bulk_create`` ask it): never the read alias of
    ``model._default_manager.db``, which a primary/replica router sends to a replica."""
    return str(router.db_for_write(model, instance=order))


def saves_plainly(model: Any) -> bool:
    """Does ``model`` save as Oscar's own model does, with no ``pre_save``/``post_save``
    receivers? Then a bulk or hand-written INSERT writes what ``save`` would; otherwise
    (a fork's ``save``, a shop's receiver) only ``save`` does what the shop expects.
    Oscar's own ``save`` is the one of its abstract model (``AbstractSource.save``,
    ``AbstractOrder.save``; Django's for the others, and for a model Oscar defines with
    no abstract one, ``PaymentEventQuantity``)."""
    oscar = next(
        (
            base
            for base in model.__mro__
            if base.__module__.startswith("oscar.")
            and getattr(getattr(base, "_meta", None), "abstract", False)
        ),
        Model,
    )
    return (
        model.save is oscar.save
        and not pre_save.has_listeners(model)
        and not post_save.has_listeners(model)
    )


def has_oscars_quantity_columns(model: Any) -> bool:
    """Does the ``PaymentEventQuantity`` model have Oscar's columns only (event, line,
    quantity, besides its id)? A fork's own columns have defaults only Python knows, so
    only the ORM writes them."""
    own = {field.name for field in model._meta.concrete_fields if not field.primary_key}
    return own == {"event", "line", "quantity"}


def _eligible(models: Sequence[Any], alias: str, order: Any) -> bool:
    """Are ``models`` written to ``alias``, with generated ids (and no other column the
    database computes: a fork's ``GeneratedField`` or ``db_returning`` field, which the
    ORM leaves out of its INSERT and reads back), Oscar's ``save`` and no save
    receivers?"""
    return all(
        write_alias(model, order) == alias
        and model._meta.pk.db_returning
        and model._meta.db_returning_fields == [model._meta.pk]
        and saves_plainly(model)
        for model in models
    )


def _plain_values(instances: Sequence[Any]) -> bool:
    """Do ``instances`` hold plain values only? An expression (a fork's ``db_default``,
    which Django sets on a new instance; a ``Value``...) is written only by the ORM's
    compiler (``DEFAULT``, its SQL), never as a parameter."""
    return not any(
        hasattr(instance.__dict__.get(field.attname), "resolve_expression")
        for instance in instances
        for field in instance._meta.concrete_fields
    )


def _writable(instance: Any, alias: str, order: Any) -> bool:
    """Can the unsaved ``instance`` of ``order`` go into the statement (its model as
    :func:`_eligible` wants it, plain values)?"""
    return _eligible([type(instance)], alias, order) and _plain_values([instance])


def _saved(instances: Sequence[Any], ids: Sequence[Any], alias: str) -> None:
    """Mark ``instances`` saved on ``alias`` with the ``ids`` the statement returned."""
    for instance, pk in zip(instances, ids, strict=True):
        instance.pk = pk
        instance._state.adding = False
        instance._state.db = alias


def _status_writes(
    connection: Any,
    order: Any,
    status: str,
    changes: Sequence[Any],
    row: Callable[[Any], tuple[str, str, list[Any]]],
) -> tuple[list[str], list[Any], list[tuple[str, Any]]]:
    """:func:`insert_placed`'s queries for the order's move to ``status``: the
    ``UPDATE`` of its status column and the ``INSERT`` of each of ``changes`` (its
    unsaved status change records, their columns as ``row`` gives them); with their
    parameters, and the names of the queries returning a record's id."""
    quote = connection.ops.quote_name
    model = type(order)
    field = model._meta.get_field("status")
    update = (
        f"cmi_order AS (UPDATE {quote(model._meta.db_table)} SET {quote(field.column)} = %s "  # noqa: S608 - identifiers from the models, quoted; values are parameters
        f"WHERE {quote(model._meta.pk.column)} = %s)"
    )
    parts = [update]
    params = [field.get_db_prep_save(status, connection), order.pk]
    returning = []
    for change in changes:
        meta = type(change)._meta
        columns, marks, values = row(change)
        parts.append(
            f"cmi_status_change AS (INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608 - identifiers from the models, quoted; values are parameters
            f"VALUES ({marks}) RETURNING {quote(meta.pk.column)})"
        )
        params += values
        returning.append(("cmi_status_change", change))
    return parts, params, returning


def insert_placed(
    source: Any,
    transactions: Sequence[Any],
    events: Sequence[Any],
    *,
    order_status: str | None = None,
    status_change: Any = None,
) -> bool:
    """Insert ``source`` (an unsaved ``Source`` of an order placed in this transaction),
    ``transactions`` (unsaved, of that source) and ``events`` (unsaved ``PaymentEvent``
    rows of the order, each then given a quantity per order line, the line's quantity)
    in one statement; with ``order_status``, the same statement writes the order's status
    column (``UPDATE ... SET status``: the caller then sends Oscar's signal and writes
    the history row, as ``Order.set_status`` does after its save). ``status_change``
    (only with ``order_status``): that history row, an unsaved ``OrderStatusChange`` of
    the order, inserted by the same statement too where its model allows it as the
    others' (then saved: ``_state.adding`` False; otherwise left unsaved, for the caller
    to write). Returns True with ``source`` saved (its id set), or False, having written
    nothing, where this cannot be done (module docstring; with ``order_status``, also a
    save receiver on the order's model)."""
    source_model = type(source)
    order = source.order
    quantity_model = get_model("order", "PaymentEventQuantity")
    line_model = order.lines.model
    models = [source_model, *{type(row) for row in (*transactions, *events)}]
    if events:
        models.append(quantity_model)
    if order_status is not None:
        models.append(type(order))
    alias = write_alias(source_model, order)
    changes = [
        change
        for change in (status_change,)
        if change is not None and order_status is not None and _writable(change, alias, order)
    ]
    connection = connections[alias]
    if (
        connection.vendor != "postgresql"
        or order._state.db != alias
        or write_alias(line_model, order) != alias
        or not _eligible(models, alias, order)
        or not _plain_values([source, *transactions, *events])
        or (events and not has_oscars_quantity_columns(quantity_model))
    ):
        return False
    quote = connection.ops.quote_name

    def column(model: Any, field: str = "") -> str:
        meta = model._meta
        return quote(meta.get_field(field).column if field else meta.pk.column)

    def table(model: Any) -> str:
        return quote(model._meta.db_table)

    def row(instance: Any, skip: Any = None) -> tuple[str, str, list[Any]]:
        """The instance's columns, their placeholders and values, as the ORM inserts
        them (every concrete field but the id and ``skip``)."""
        fields = [
            field
            for field in instance._meta.concrete_fields
            if not field.primary_key and field is not skip
        ]
        values = [
            field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields
        ]
        columns = ", ".join(quote(field.column) for field in fields)
        return columns, ", ".join(["%s"] * len(values)), values

    columns, marks, params = row(source)
    parts = [
        (
            f"cmi_source AS (INSERT INTO {table(source_model)} ({columns}) "  # noqa: S608 - identifiers from the models, quoted; values are parameters
            f"VALUES ({marks}) RETURNING {column(source_model)})"
        )
    ]
    for index, transaction in enumerate(transactions):
        link = type(transaction)._meta.get_field("source")
        columns, marks, values = row(transaction, skip=link)
        parts.append(
            f"cmi_transaction_{index} AS (INSERT INTO {table(type(transaction))} "  # noqa: S608 - identifiers from the models, quoted; values are parameters
            f"({quote(link.column)}, {columns}) "
            f"SELECT {column(source_model)}, {marks} FROM cmi_source)"
        )
        params += values
    if events:
        event_model = type(events[0])
        rows = []
        for event in events:
            columns, marks, values = row(event)
            rows.append(f"({marks})")
            params += values
        parts.append(
            f"cmi_events AS (INSERT INTO {table(event_model)} ({columns}) "  # noqa: S608 - identifiers from the models, quoted; values are parameters
            f"VALUES {', '.join(rows)} RETURNING {column(event_model)})"
        )
        quantity_columns = ", ".join(
            column(quantity_model, field) for field in ("event", "line", "quantity")
        )
        parts.append(
            f"cmi_quantities AS (INSERT INTO {table(quantity_model)} ({quantity_columns}) "  # noqa: S608 - identifiers from the models, quoted; values are parameters
            f"SELECT cmi_events.{column(event_model)}, cmi_line.{column(line_model)}, "
            f"cmi_line.{column(line_model, 'quantity')} "
            f"FROM cmi_events, {table(line_model)} cmi_line "
            f"WHERE cmi_line.{column(line_model, 'order')} = %s)"
        )
        params.append(order.pk)
    written: list[tuple[str, Any]] = [("cmi_source", source)]
    if order_status is not None:
        status_parts, status_params, written[1:] = _status_writes(
            connection, order, order_status, changes, row
        )
        parts += status_parts
        params += status_params
    ids = ", ".join(f"{name}.{column(type(instance))}" for name, instance in written)
    sql = f"WITH {', '.join(parts)} SELECT {ids} FROM {', '.join(name for name, _ in written)}"  # noqa: S608 - identifiers from the models, quoted; values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        _saved([instance for _, instance in written], cursor.fetchone(), alias)
    return True
