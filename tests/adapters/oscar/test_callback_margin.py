"""Issue #16, goal 1's margin: the approved callback's status change record written with
its payment records, and the order-placed e-mail reading the order's lines and
surcharges once.

On PostgreSQL the order's move to its "captured" status is already written by the
records statement (``cmi_oscar.records.insert_placed``); its ``OrderStatusChange`` row
rides along when nothing could tell it from Oscar's ``Order.set_status`` (which sends
``order_status_changed`` first, then writes the row): no receiver of that signal, no
fork's ``_create_order_status_change``, no save receiver on the record's model. Runs on
SQLite and on PostgreSQL (dev.py's second pass).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cmi_django.models import Payment
from cmi_oscar import placement
from django.core import mail
from django.db import connection
from django.db.models.signals import post_save
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
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
OrderStatusChange = get_model("order", "OrderStatusChange")

pytestmark = pytest.mark.django_db

HISTORY_INSERT = f'INSERT INTO "{OrderStatusChange._meta.db_table}"'


def _approve(
    shopper: Client, product: Any, client: Client, on_commit: Callable[..., Any]
) -> tuple[Payment, list[str]]:
    """One approved callback (auto capture) with its after-commit work; its SQL."""
    payment, fields = start_payment(shopper, product)
    callback = callback_for(payment, request_fields=fields)
    with CaptureQueriesContext(connection) as queries, on_commit(execute=True):
        assert post_form(client, "/cmi/callback/", callback).content == b"ACTION=POSTAUTH"
    return payment, [query["sql"] for query in queries.captured_queries]


def _history(order: Any) -> list[tuple[str, str]]:
    return list(order.status_changes.order_by("id").values_list("old_status", "new_status"))


def test_the_status_change_record_rides_with_the_payment_records_on_postgresql(
    shopper: Client, product: Any, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    before = timezone.now()
    payment, statements = _approve(shopper, product, client, django_capture_on_commit_callbacks)
    order = Order.objects.get(number=payment.reference)
    assert order.status == "Paid"
    (change,) = order.status_changes.all()
    assert (change.old_status, change.new_status) == ("Pending", "Paid")
    assert before <= change.date_created <= timezone.now()
    separate = [sql for sql in statements if sql.startswith(HISTORY_INSERT)]
    if connection.vendor == "postgresql":
        assert separate == []
        (records,) = [sql for sql in statements if sql.startswith("WITH cmi_source AS")]
        assert f"cmi_status_change AS ({HISTORY_INSERT}" in records
    else:
        assert len(separate) == 1


def test_a_status_signal_receiver_runs_before_the_record_is_written_as_in_oscar(
    shopper: Client, product: Any, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    """Oscar's ``set_status`` sends ``order_status_changed``, then writes the record: a
    receiver finds no record for the move yet, and the record follows on its own."""
    seen: list[tuple[str, str, int]] = []

    def receiver(sender: Any, order: Any, old_status: str, new_status: str, **_: Any) -> None:
        seen.append((old_status, new_status, order.status_changes.count()))

    order_status_changed.connect(receiver, dispatch_uid="test-margin-status")
    try:
        payment, statements = _approve(shopper, product, client, django_capture_on_commit_callbacks)
    finally:
        order_status_changed.disconnect(dispatch_uid="test-margin-status")
    assert seen == [("Pending", "Paid", 0)]
    assert _history(Order.objects.get(number=payment.reference)) == [("Pending", "Paid")]
    assert len([sql for sql in statements if sql.startswith(HISTORY_INSERT)]) == 1


def test_a_forked_status_change_writer_and_a_save_receiver_are_still_called(
    shopper: Client,
    product: Any,
    client: Client,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fork's ``_create_order_status_change`` writes the record itself; a shop's
    ``post_save`` receiver on the record's model hears it saved, as Oscar's checkout."""
    forked: list[tuple[str, str]] = []
    original = Order._create_order_status_change

    def create(self: Any, old_status: str, new_status: str) -> None:
        forked.append((old_status, new_status))
        original(self, old_status, new_status)

    monkeypatch.setattr(Order, "_create_order_status_change", create)
    payment, _ = _approve(shopper, product, client, django_capture_on_commit_callbacks)
    assert forked == [("Pending", "Paid")]
    assert _history(Order.objects.get(number=payment.reference)) == [("Pending", "Paid")]
    monkeypatch.undo()

    heard: list[tuple[str, bool]] = []

    def receiver(sender: Any, instance: Any, created: bool, **_: Any) -> None:
        heard.append((instance.new_status, created))

    post_save.connect(receiver, sender=OrderStatusChange, dispatch_uid="test-margin-history")
    try:
        payment, _ = _approve(shopper, product, client, django_capture_on_commit_callbacks)
    finally:
        post_save.disconnect(sender=OrderStatusChange, dispatch_uid="test-margin-history")
    assert heard == [("Paid", True)]
    assert _history(Order.objects.get(number=payment.reference)) == [("Pending", "Paid")]


def test_the_order_placed_email_reads_the_lines_and_surcharges_once(
    shopper: Client, product: Any, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    """Oscar's text and HTML bodies each list the lines and add up the surcharges: one
    query each for the whole e-mail, and the same e-mail as before (every line in both
    bodies)."""
    fill_basket(shopper, create_product(title="Babouche", upc="BAB-1"), 1)
    payment, _ = _approve(shopper, product, client, django_capture_on_commit_callbacks)
    order = Order.objects.get(number=payment.reference)
    mail.outbox.clear()
    with CaptureQueriesContext(connection) as queries:
        placement.send_confirmation(order.pk, payment.lang)  # as a worker: by its id
    statements = [query["sql"] for query in queries.captured_queries]
    lines = [sql for sql in statements if f'FROM "{order.lines.model._meta.db_table}"' in sql]
    surcharges = [
        sql for sql in statements if f'FROM "{order.surcharges.model._meta.db_table}"' in sql
    ]
    assert (len(lines), len(surcharges)) == (1, 1), statements
    (message,) = mail.outbox
    html = message.alternatives[0][0]
    for title in ("Babouche", "Tajine"):
        assert title in message.body
        assert title in html
    assert payment.reference in message.body
