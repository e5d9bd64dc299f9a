"""What one approved callback costs and writes (issue #16: the callback against Oscar's
own order placement, ``benchmarks/bench_oscar_callback.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cmi_django.models import Payment
from django.core import mail
from django.db import connection
from django.db.models.signals import post_save
from django.test import Client
from django.test.utils import CaptureQueriesContext
from oscar.apps.order.signals import order_status_changed
from oscar.core.loading import get_model

from tests.adapters.oscar.support import (
    callback_for,
    create_product,
    fill_basket,
    post_form,
    start_payment,
)

Order = get_model("order", "Order")
SourceType = get_model("payment", "SourceType")
PaymentEventType = get_model("order", "PaymentEventType")
Source = get_model("payment", "Source")

pytestmark = pytest.mark.django_db

#: SQL statements of one auto-capture callback, its order placed and its e-mail sent
#: (the payment types already there, the immediate task backend), by database: ceilings
#: at today's counts. It was 64 before issue #16 (the types looked up one by one, the
#: source written three times, the order looked for before the basket said it could
#: exist, read again and written whole, reloaded for the e-mail), then 53 on SQLite (the
#: e-mail task read the order, its address and country again by the id in its JSON
#: arguments; the event quantities read the order's lines first). Now the immediate
#: backend's task gets the placed order handed over (``cmi_django.tasks.handed``), the
#: quantities are one ``INSERT ... SELECT``, and on PostgreSQL the source, transactions,
#: events, quantities and the order's status are one statement (``cmi_oscar.records``).
#: Oscar's own placement of the same order, e-mail included, is 45 (PostgreSQL,
#: ``benchmarks/bench_oscar_callback.py``, where the callback is now 46 with its unlocked
#: payment read); issue #16 allows 10 more. With the database task backend the e-mail
#: leaves the callback and one task row is written instead. Since then (48 on SQLite, 44
#: on PostgreSQL here; 45 in the bench) the e-mail reads the order's lines and
#: surcharges once, not once per template, and on PostgreSQL the status change record
#: rides with the records statement when nothing listens for Oscar's signal (42 in the
#: bench).
QUERY_BUDGETS = {"sqlite": 46, "postgresql": 41}


def _approve(
    shopper: Client, product: Any, client: Client, on_commit: Callable[..., Any]
) -> tuple[Payment, list[str]]:
    """One approved callback (auto capture) with its after-commit work; its SQL."""
    payment, fields = start_payment(shopper, product)
    callback = callback_for(payment, request_fields=fields)
    with CaptureQueriesContext(connection) as queries, on_commit(execute=True):
        assert post_form(client, "/cmi/callback/", callback).content == b"ACTION=POSTAUTH"
    return payment, [query["sql"] for query in queries.captured_queries]


def test_callback_stays_within_its_query_budget(
    shopper: Client, product: Any, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    _approve(shopper, product, client, django_capture_on_commit_callbacks)  # types created
    payment, queries = _approve(shopper, product, client, django_capture_on_commit_callbacks)
    assert len(queries) <= QUERY_BUDGETS[connection.vendor], "\n".join(queries)
    source = Order.objects.get(number=payment.reference).sources.get()
    assert (source.amount_allocated, source.amount_debited) == (payment.amount, payment.amount)
    assert len(mail.outbox) == 2


def test_callback_writes_the_columns_it_changes_only(
    shopper: Client, product: Any, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    """The payment's JSON columns are not rewritten; the order's status is written alone
    (a full-row save of a stale copy would undo what another writer changed)."""
    _, queries = _approve(shopper, product, client, django_capture_on_commit_callbacks)
    payment_updates = [q for q in queries if q.startswith('UPDATE "cmi_django_payment"')]
    assert payment_updates
    for update in payment_updates:
        assert '"data"' not in update
        assert '"request_fields"' not in update
        assert '"state"' in update
    # On PostgreSQL the UPDATE rides in the payment records' statement (cmi_oscar.records).
    order_updates = [q for q in queries if 'UPDATE "order_order"' in q]
    assert order_updates
    for update in order_updates:
        assert update.count('UPDATE "order_order"') == 1
        assert 'UPDATE "order_order" SET "status" = ' in update
        assert '"total_incl_tax"' not in update


def test_payment_types_are_created_once_then_looked_up(
    shopper: Client, product: Any, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    assert not SourceType.objects.exists()
    assert not PaymentEventType.objects.exists()
    for _ in range(2):
        _approve(shopper, product, client, django_capture_on_commit_callbacks)
    assert list(SourceType.objects.values_list("code", "name")) == [("cmi", "CMI")]
    assert sorted(PaymentEventType.objects.values_list("name", flat=True)) == [
        "Authorised",
        "Paid",
    ]
    source_type = SourceType.objects.get()
    for order in Order.objects.all():
        assert order.sources.get().source_type == source_type
        events = order.payment_events.order_by("id")
        assert [event.event_type.name for event in events] == ["Authorised", "Paid"]


def test_status_move_keeps_oscars_signal_and_history(
    shopper: Client, product: Any, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    moves: list[tuple[str, str]] = []

    def receiver(sender: Any, order: Any, old_status: str, new_status: str, **_: Any) -> None:
        moves.append((old_status, new_status))

    order_status_changed.connect(receiver)
    try:
        _approve(shopper, product, client, django_capture_on_commit_callbacks)
    finally:
        order_status_changed.disconnect(receiver)
    order = Order.objects.get()
    assert order.status == "Paid"
    assert moves == [("Pending", "Paid")]
    assert list(order.status_changes.values_list("old_status", "new_status")) == [
        ("Pending", "Paid")
    ]


def test_order_placed_email_names_the_order_and_its_address(
    shopper: Client, product: Any, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    payment, _ = _approve(shopper, product, client, django_capture_on_commit_callbacks)
    (message,) = mail.outbox
    assert payment.reference in message.body
    assert "12 rue Tarik" in message.body
    assert message.to == ["amina@example.ma"]


def test_order_with_the_number_but_not_from_the_basket_is_not_paid_by_the_callback(
    shopper: Client, product: Any, client: Client
) -> None:
    """Only a submitted basket can have its order: an order with the number that was not
    placed from the frozen basket is not taken for it (nor captured for); Oscar refuses a
    second order with the number, the callback answers FAILURE and staff are told."""
    payment, fields = start_payment(shopper, product)
    Order.objects.create(
        number=payment.reference, currency="MAD", total_incl_tax=1, total_excl_tax=1
    )
    callback = callback_for(payment, request_fields=fields)
    assert post_form(client, "/cmi/callback/", callback).content == b"FAILURE"
    order = Order.objects.get()
    assert not order.sources.exists()
    payment.refresh_from_db()
    assert payment.state == "needs_attention"
    assert "already an order" in payment.attention_reason


def _records(order: Any) -> dict[str, Any]:
    """What the order's payment records say, in plain values."""
    source = order.sources.get()
    events = order.payment_events.order_by("event_type__name")
    return {
        "source": (
            source.source_type.code,
            source.currency,
            source.amount_allocated,
            source.amount_debited,
            source.amount_refunded,
            source.reference,
            source.label,
        ),
        "transactions": sorted(
            (t.txn_type, t.amount, t.reference, t.status, t.date_created is not None)
            for t in source.transactions.all()
        ),
        "events": [
            (
                e.event_type.name,
                e.amount,
                e.reference,
                e.shipping_event_id,
                e.date_created is not None,
                sorted((q.line.product.upc, q.quantity) for q in e.line_quantities.all()),
            )
            for e in events
        ],
    }


def test_placed_order_records_are_oscars_own_in_one_statement_on_postgresql(
    shopper: Client, product: Any, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    """The source, its transactions, the events and their line quantities of an order the
    callback placed: the rows Oscar's checkout writes, one quantity per line and event.
    On PostgreSQL they are one statement (cmi_oscar.records); elsewhere the ORM's."""
    fill_basket(shopper, create_product(title="Babouche", upc="BAB-1"), 1)
    payment, fields = start_payment(shopper, product, quantity=2)
    callback = callback_for(payment, request_fields=fields, trans_id="T-REC-1")
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert post_form(client, "/cmi/callback/", callback).content == b"ACTION=POSTAUTH"
    payment.refresh_from_db()
    amount = payment.amount
    assert _records(Order.objects.get()) == {
        "source": ("cmi", "MAD", amount, amount, 0, payment.oid, payment.masked_pan or ""),
        "transactions": [
            ("Authorise", amount, "T-REC-1", "", True),
            ("Debit", amount, "T-REC-1", "", True),
        ],
        "events": [
            ("Authorised", amount, "T-REC-1", None, True, [("BAB-1", 1), ("TAJ-1", 2)]),
            ("Paid", amount, "T-REC-1", None, True, [("BAB-1", 1), ("TAJ-1", 2)]),
        ],
    }
    statements = [query["sql"] for query in queries.captured_queries]
    tables = ("payment_source", "payment_transaction", "order_paymentevent")
    tables += ("order_paymenteventquantity",)
    starts = ("WITH ", *(f'INSERT INTO "{table}"' for table in tables))
    records = [q for q in statements if q.startswith(starts)]
    if connection.vendor == "postgresql":
        assert len(records) == 1
        assert records[0].startswith('WITH cmi_source AS (INSERT INTO "payment_source"')
    else:
        assert len(records) == 4  # source, transactions, events, quantities


def test_save_receivers_on_the_source_and_the_order_keep_the_orm_path_and_hear_it(
    shopper: Client, product: Any, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    """A shop's ``post_save`` receivers on Oscar's Source and Order are called as before:
    the one statement is not used for them then, and the records are the same."""
    saved: list[tuple[Any, bool]] = []
    orders: list[tuple[str, Any]] = []

    def receiver(sender: Any, instance: Any, created: bool, **_: Any) -> None:
        saved.append((instance.reference, created))

    def order_receiver(sender: Any, instance: Any, update_fields: Any, **_: Any) -> None:
        orders.append((instance.status, update_fields and sorted(update_fields)))

    post_save.connect(receiver, sender=Source, dispatch_uid="test-source-receiver")
    try:
        payment, _ = _approve(shopper, product, client, django_capture_on_commit_callbacks)
    finally:
        post_save.disconnect(sender=Source, dispatch_uid="test-source-receiver")
    assert saved == [(payment.oid, True)]
    post_save.connect(order_receiver, sender=Order, dispatch_uid="test-order-receiver")
    try:
        _approve(shopper, product, client, django_capture_on_commit_callbacks)
    finally:
        post_save.disconnect(sender=Order, dispatch_uid="test-order-receiver")
    # Oscar saves the new order ("Pending"), then the move to "Paid" saves its status.
    assert orders[-1] == ("Paid", ["status"])
    payment.refresh_from_db()
    records = _records(Order.objects.get(number=payment.reference))
    assert records["source"][2:4] == (payment.amount, payment.amount)
    assert [event[0] for event in records["events"]] == ["Authorised", "Paid"]
    assert records["events"][0][5] == [("TAJ-1", 1)]
