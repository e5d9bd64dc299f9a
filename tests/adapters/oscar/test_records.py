"""The payment records of an order the callback placed, against what a shop relies on.

``cmi_oscar.hooks._record`` writes them in one statement on PostgreSQL
(``cmi_oscar.records.insert_placed``) or in a few bulk statements elsewhere; a shop's
database routers, its ``post_save`` receivers and a fork's ``save`` must see them as
Oscar's checkout writes them (``Source.save``, ``source.transactions.create``,
``order.payment_events.create``, ``event.line_quantities.create``). And the order-placed
e-mail sent with the order handed over is the one a worker sends after reading it again.
Runs on SQLite and on PostgreSQL (dev.py's second pass).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cmi_django.models import Payment
from cmi_django.signals import payment_changed
from cmi_oscar import hooks, placement
from django.db import connection, connections, transaction
from django.db.models import Value
from django.db.models.signals import post_save
from django.test import Client, override_settings
from django.utils import timezone
from oscar.core.loading import get_model

from tests.adapters.oscar.support import callback_for, post_form, start_payment

Order = get_model("order", "Order")
Source = get_model("payment", "Source")
Transaction = get_model("payment", "Transaction")
PaymentEvent = get_model("order", "PaymentEvent")
PaymentEventQuantity = get_model("order", "PaymentEventQuantity")

pytestmark = pytest.mark.django_db

RECORD_MODELS = (Source, Transaction, PaymentEvent, PaymentEventQuantity)


class ReplicaReads:
    """A primary/replica router: the payment records are read from "replica", written
    to "default"."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return "replica" if model in RECORD_MODELS else None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return "default"


def _approve(client: Client, product: Any, **callback: Any) -> Payment:
    payment, fields = start_payment(Client(), product)
    fields = callback_for(payment, request_fields=fields, **callback)
    assert post_form(client, "/cmi/callback/", fields).content == b"ACTION=POSTAUTH"
    payment.refresh_from_db()
    return payment


@pytest.fixture
def replica() -> Iterator[None]:
    """A "replica" alias (the default database's settings) that refuses every statement:
    a read-only replica, or one whose writes would escape the callback's transaction."""
    connections.settings["replica"] = dict(connections["default"].settings_dict)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("SQL sent to the read replica")

    connections["replica"].ensure_connection = refuse  # type: ignore[method-assign]
    try:
        yield
    finally:
        del connections["replica"]
        del connections.settings["replica"]


@pytest.mark.usefixtures("replica")
def test_records_are_written_where_the_routers_write_not_to_the_read_replica(
    product: Any, client: Client
) -> None:
    """A shop that reads from a replica: the callback's records go to the database the
    routers write to (``db_for_write``), inside the callback's transaction, never to the
    alias ``_default_manager.db`` names (the read database)."""
    with override_settings(DATABASE_ROUTERS=[f"{__name__}.ReplicaReads"]):
        payment = _approve(client, product)
    source = Source.objects.get()
    assert (source.amount_allocated, source.amount_debited) == (payment.amount, payment.amount)
    assert sorted(Transaction.objects.values_list("txn_type", flat=True)) == [
        "Authorise",
        "Debit",
    ]
    assert PaymentEvent.objects.count() == 2
    assert PaymentEventQuantity.objects.count() == 2


@pytest.fixture
def heard() -> Iterator[list[tuple[str, bool]]]:
    """``post_save`` receivers of a shop on the transaction, event and quantity models."""
    seen: list[tuple[str, bool]] = []

    def receiver(sender: Any, instance: Any, created: bool, **_: Any) -> None:
        seen.append((sender._meta.model_name, created))

    models = (Transaction, PaymentEvent, PaymentEventQuantity)
    for model in models:
        post_save.connect(receiver, sender=model, dispatch_uid=f"test-records-{model}")
    try:
        yield seen
    finally:
        for model in models:
            post_save.disconnect(sender=model, dispatch_uid=f"test-records-{model}")


def test_shop_receivers_hear_every_transaction_event_and_quantity(
    product: Any, client: Client, heard: list[tuple[str, bool]]
) -> None:
    """Oscar's checkout saves each transaction, event and line quantity (``create``): a
    shop's ``post_save`` receiver (accounting, a ledger) hears each of them from the
    callback too, on every database."""
    _approve(client, product)
    assert sorted(heard) == [
        ("paymentevent", True),
        ("paymentevent", True),
        ("paymenteventquantity", True),
        ("paymenteventquantity", True),
        ("transaction", True),
        ("transaction", True),
    ]


def test_a_forked_save_on_transactions_and_events_runs_for_the_callbacks_rows(
    product: Any, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fork's ``Transaction.save`` / ``PaymentEvent.save`` (here setting a column) and
    ``PaymentEventQuantity.save`` run for the callback's rows, as for Oscar's checkout's."""
    saves = {model: model.save for model in (Transaction, PaymentEvent)}

    def tagged(model: Any) -> Any:
        def save(self: Any, *args: Any, **kwargs: Any) -> None:
            self.reference = f"{self.reference}/forked"
            saves[model](self, *args, **kwargs)

        return save

    for model in saves:
        monkeypatch.setattr(model, "save", tagged(model))
    quantity_save = PaymentEventQuantity.save
    quantities: list[int] = []

    def counted(self: Any, *args: Any, **kwargs: Any) -> None:
        quantities.append(self.quantity)
        quantity_save(self, *args, **kwargs)

    monkeypatch.setattr(PaymentEventQuantity, "save", counted)
    _approve(client, product, trans_id="T-FORK")
    assert quantities == [1, 1]
    assert sorted(Transaction.objects.values_list("reference", flat=True)) == [
        "T-FORK/forked",
        "T-FORK/forked",
    ]
    assert sorted(PaymentEvent.objects.values_list("reference", flat=True)) == [
        "T-FORK/forked",
        "T-FORK/forked",
    ]


@pytest.mark.parametrize(
    "hostile",
    [
        "'); DELETE FROM payment_source; --",
        "%s%s%(x)s",
        "T\\'1\"",
    ],
)
def test_record_values_are_data_never_sql(product: Any, hostile: str) -> None:
    """The callback's TransId and masked PAN are shaped by cmi_core before they get here
    (a loose one is refused); should one get through regardless, the records statement
    writes it as given (quotes, placeholders and all) and touches nothing else."""
    payment, _ = start_payment(Client(), product)
    payment.trans_id = hostile
    payment.masked_pan = hostile
    before = timezone.now()
    with transaction.atomic():
        order, created = placement.place_order(payment)
        assert created
        hooks._record(order, payment, created=True, authorise=payment.amount, debit=payment.amount)
    source = Source.objects.get()
    assert (source.label, source.reference, source.amount_debited) == (
        hostile,
        payment.oid,
        payment.amount,
    )
    assert sorted(source.transactions.values_list("reference", flat=True)) == [hostile] * 2
    assert list(PaymentEvent.objects.values_list("reference", flat=True)) == [hostile] * 2
    assert PaymentEventQuantity.objects.count() == 2
    # auto_now_add as the ORM sets it: the time of the write, in UTC, on every row.
    stamps = [
        *source.transactions.values_list("date_created", flat=True),
        *PaymentEvent.objects.values_list("date_created", flat=True),
    ]
    assert all(before <= stamp <= timezone.now() for stamp in stamps), stamps


def test_the_email_with_the_handed_order_is_the_one_read_again(
    product: Any,
    mailoutbox: list[Any],
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The immediate backend sends the order the hook placed; a worker reads it again by
    its id. Same recipient, subject and body, in the shopper's language (Arabic), not the
    callback request's (English)."""
    shopper = Client(headers={"accept-language": "ar"})
    payment, fields = start_payment(shopper, product)
    assert payment.lang == "ar"
    send = placement.send_confirmation
    given: list[bool] = []

    def spy(order_id: int, lang: str, *, order: Any = None) -> None:
        given.append(order is not None)
        send(order_id, lang, order=order)

    monkeypatch.setattr(placement, "send_confirmation", spy)
    cmi = Client(headers={"accept-language": "en"})
    callback = callback_for(payment, request_fields=fields)
    with django_capture_on_commit_callbacks(execute=True):
        assert post_form(cmi, "/cmi/callback/", callback).content == b"ACTION=POSTAUTH"
    assert given == [True]  # the task got the placed order
    (handed,) = mailoutbox
    order = Order.objects.get()
    placement.send_confirmation(order.pk, payment.lang)  # as a worker: read by its id
    read_again = mailoutbox[1]
    assert handed.subject.startswith("تأكيد الطلب")
    assert (handed.to, handed.subject, handed.body) == (
        read_again.to,
        read_again.subject,
        read_again.body,
    )
    assert [a[0] for a in handed.alternatives] == [a[0] for a in read_again.alternatives]


@pytest.fixture
def status_db_default() -> Iterator[None]:
    """A fork's ``Transaction.status`` with a database default (Django's ``db_default``):
    a new instance holds an expression for it, which only the ORM's INSERT writes."""
    field = Transaction._meta.get_field("status")
    before = field.db_default
    field.db_default = Value("")
    field.__dict__.pop("_get_default", None)  # Django caches the default's maker
    if connection.vendor == "postgresql":  # the column as the fork's migration makes it
        with connection.cursor() as cursor:
            cursor.execute(
                'ALTER TABLE "payment_transaction" ALTER COLUMN "status" SET DEFAULT \'\''
            )
    try:
        yield
    finally:
        field.db_default = before
        field.__dict__.pop("_get_default", None)


@pytest.mark.usefixtures("status_db_default")
def test_a_database_default_on_a_forked_column_is_written_by_the_orm(
    product: Any, client: Client
) -> None:
    """The one statement cannot write an expression as a parameter: with one among the
    values the records go through the ORM, and the callback is approved as always."""
    if connection.vendor != "postgresql":
        # SQLite cannot give an existing column a default as the fork's migration would
        # (Django 6.1 then leaves the column out of its INSERT); the one statement is
        # PostgreSQL's only, so the fallback is tested there.
        pytest.skip("a database default is added to the column on PostgreSQL only")
    assert Transaction(txn_type="Authorise").status != ""  # an expression, not a value
    payment = _approve(client, product)
    source = Source.objects.get()
    assert (source.amount_allocated, source.amount_debited) == (payment.amount, payment.amount)
    assert sorted(Transaction.objects.values_list("txn_type", "status")) == [
        ("Authorise", ""),
        ("Debit", ""),
    ]
    assert PaymentEvent.objects.count() == 2


@pytest.fixture
def generated_status() -> Iterator[None]:
    """A fork's ``Transaction.status`` computed by the database (a ``GeneratedField``):
    the ORM leaves it out of its INSERT and reads it back."""
    field = Transaction._meta.get_field("status")
    plain = type(field)
    field.__class__ = type("Generated", (plain,), {"generated": True, "db_returning": True})
    Transaction._meta._expire_cache()
    Transaction._meta.__dict__.pop("db_returning_fields", None)  # cached, not expired
    if connection.vendor == "postgresql":  # the column as the fork's migration makes it
        with connection.cursor() as cursor:
            cursor.execute(
                'ALTER TABLE "payment_transaction" DROP COLUMN "status", ADD COLUMN "status" '
                "varchar(128) GENERATED ALWAYS AS ('generated') STORED"
            )
    try:
        yield
    finally:
        field.__class__ = plain
        Transaction._meta._expire_cache()
    Transaction._meta.__dict__.pop("db_returning_fields", None)  # cached, not expired


@pytest.mark.usefixtures("generated_status")
def test_a_column_the_database_computes_is_left_to_the_orm(product: Any, client: Client) -> None:
    """The one statement writes every concrete column; a generated one refuses any value
    but its own, so such a model's rows go through the ORM (PostgreSQL: the fast path;
    elsewhere the ORM writes them anyway)."""
    if connection.vendor != "postgresql":
        pytest.skip("a generated column is made here on PostgreSQL only")
    payment = _approve(client, product)
    source = Source.objects.get()
    assert (source.amount_allocated, source.amount_debited) == (payment.amount, payment.amount)
    assert sorted(Transaction.objects.values_list("txn_type", "status")) == [
        ("Authorise", "generated"),
        ("Debit", "generated"),
    ]


def test_a_change_rolled_back_after_the_records_then_retried_records_the_money_once(
    product: Any, client: Client
) -> None:
    """The records statement runs inside the callback's transaction: a failure after it
    (a receiver of the change) rolls it back with the order, and CMI's retry records
    one source, one authorisation and one debit: the money once."""
    payment, fields = start_payment(Client(), product)
    callback = callback_for(payment, request_fields=fields)

    def fails(**kwargs: Any) -> None:
        raise RuntimeError("receiver down")

    payment_changed.connect(fails, dispatch_uid="test-records-fails")
    try:
        assert post_form(client, "/cmi/callback/", callback).content == b"FAILURE"
    finally:
        payment_changed.disconnect(dispatch_uid="test-records-fails")
    assert not Order.objects.exists()
    assert not Source.objects.exists()
    assert not Transaction.objects.exists()
    assert not PaymentEvent.objects.exists()
    assert post_form(client, "/cmi/callback/", callback).content == b"ACTION=POSTAUTH"
    assert post_form(client, "/cmi/callback/", callback).content == b"ACTION=POSTAUTH"  # again
    source = Source.objects.get()
    assert (source.amount_allocated, source.amount_debited) == (payment.amount, payment.amount)
    assert sorted(Transaction.objects.values_list("txn_type", "amount")) == [
        ("Authorise", payment.amount),
        ("Debit", payment.amount),
    ]
    assert PaymentEvent.objects.count() == 2
    assert PaymentEventQuantity.objects.count() == 2


def test_a_line_cascade_on_the_captured_status_moves_the_lines_as_set_status_does(
    product: Any, client: Client, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """OSCAR_ORDER_STATUS_CASCADE for the captured status: the order's status is not
    written with the records then, and Oscar's cascade moves the lines, with the signal
    and the history row, as ``Order.set_status`` does."""
    settings.OSCAR_INITIAL_LINE_STATUS = "Pending"
    Line = get_model("order", "Line")
    monkeypatch.setattr(Order, "cascade", {"Paid": "Ready"})
    monkeypatch.setattr(Line, "pipeline", {"Pending": ("Ready",)})
    _approve(client, product)
    order = Order.objects.get()
    assert order.status == "Paid"
    assert list(order.lines.values_list("status", flat=True)) == ["Ready"]
    assert list(order.status_changes.values_list("old_status", "new_status")) == [
        ("Pending", "Paid")
    ]
