"""Oscar's order e-mail as a task: CMI's reply first, the e-mail from the worker after.

With the database backend (what production runs, ``django-tasks-db``) the callback only
writes a task row beside the order; ``manage.py db_worker`` sends the e-mail later, in
the shopper's language. Runs on SQLite and on PostgreSQL (dev.py's second pass).
"""

from __future__ import annotations

from typing import Any

import pytest
from cmi_django import tasks
from cmi_django.signals import payment_changed
from cmi_oscar import tasks as oscar_tasks
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from oscar.core.loading import get_model

from tests.adapters.oscar.support import callback_for, post_form, start_payment
from tests.adapters.tasks_support import SUCCEEDED, WAITING, run_worker, task_rows
from tests.adapters.tasksettings import DATABASE_TASKS

Order = get_model("order", "Order")

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL_TASK = "cmi_oscar.tasks.send_confirmation"


def test_callback_queues_the_email_and_the_worker_sends_it_in_the_shoppers_language(
    settings: Any, product: Any, client: Client, mailoutbox: list[Any]
) -> None:
    settings.TASKS = DATABASE_TASKS
    shopper = Client(headers={"accept-language": "ar"})
    payment, fields = start_payment(shopper, product)
    assert payment.lang == "ar"
    callback = callback_for(payment, request_fields=fields)
    assert post_form(client, "/cmi/callback/", callback).content == b"ACTION=POSTAUTH"
    order = Order.objects.get()
    # CMI has its answer and the order is committed; the e-mail waits in the queue.
    assert mailoutbox == []
    (row,) = task_rows(EMAIL_TASK)
    assert row.status in WAITING
    assert row.args_kwargs["args"] == [order.pk, "ar"]
    run_worker()
    assert len(mailoutbox) == 1
    assert mailoutbox[0].subject.startswith("تأكيد الطلب")  # Arabic, as the shopper paid
    assert order.number in mailoutbox[0].body
    (row,) = task_rows(EMAIL_TASK)
    assert row.status in SUCCEEDED
    # CMI's retry of the same callback changes nothing and queues nothing more.
    assert post_form(client, "/cmi/callback/", callback).content == b"ACTION=POSTAUTH"
    assert len(task_rows(EMAIL_TASK)) == 1
    run_worker()
    assert len(mailoutbox) == 1


def test_a_callback_that_rolls_back_queues_no_email_and_its_retry_queues_one(
    settings: Any, product: Any, client: Client, mailoutbox: list[Any]
) -> None:
    settings.TASKS = DATABASE_TASKS
    payment, fields = start_payment(Client(), product)
    callback = callback_for(payment, request_fields=fields)

    def fails(**kwargs: Any) -> None:  # a receiver after the hook, in its transaction
        raise RuntimeError("receiver down")

    payment_changed.connect(fails, dispatch_uid="test-tasks-fails")
    try:
        assert post_form(client, "/cmi/callback/", callback).content == b"FAILURE"
    finally:
        payment_changed.disconnect(dispatch_uid="test-tasks-fails")
    # The hook had placed the order and queued its e-mail: all of it rolled back.
    assert not Order.objects.exists()
    assert task_rows(EMAIL_TASK) == []
    # CMI sends the callback again: committed this time, with one e-mail queued.
    assert post_form(client, "/cmi/callback/", callback).content == b"ACTION=POSTAUTH"
    (row,) = task_rows(EMAIL_TASK)
    assert row.args_kwargs["args"] == [Order.objects.get().pk, payment.lang]
    run_worker()
    assert len(mailoutbox) == 1


def _order_reads(queries: list[dict[str, Any]]) -> list[str]:
    """The statements that read an order row or its shipping address by themselves (not
    Oscar's ``SELECT 1`` check that the number is free)."""
    return [
        query["sql"]
        for query in queries
        if query["sql"].startswith(('SELECT "order_order".', 'SELECT "order_shippingaddress".'))
    ]


def test_immediate_backend_sends_the_placed_order_without_reading_it_again(
    product: Any, client: Client, mailoutbox: list[Any]
) -> None:
    """The immediate backend runs the e-mail task right after the commit, in the
    callback: it gets the order the hook placed (handed over by cmi_django.tasks.enqueue),
    as Oscar's checkout sends it, instead of reading the order and its address again."""
    payment, fields = start_payment(Client(), product)
    callback = callback_for(payment, request_fields=fields)
    with CaptureQueriesContext(connection) as queries:
        assert post_form(client, "/cmi/callback/", callback).content == b"ACTION=POSTAUTH"
    assert _order_reads(queries.captured_queries) == []
    (message,) = mailoutbox
    order = Order.objects.get()
    assert order.number in message.body
    assert "12 rue Tarik" in message.body
    # Nothing is kept once the task ran: a later run (a worker's) reads the order by id.
    assert tasks._HANDED.get() is None
    assert tasks.handed(oscar_tasks.send_confirmation, order.pk, payment.lang) == {}
    with CaptureQueriesContext(connection) as queries:
        oscar_tasks.send_confirmation.call(order.pk, payment.lang)
    assert _order_reads(queries.captured_queries)
    assert len(mailoutbox) == 2
    assert order.number in mailoutbox[1].body


def test_immediate_backend_rolled_back_callback_sends_nothing_and_keeps_nothing(
    product: Any, client: Client, mailoutbox: list[Any]
) -> None:
    payment, fields = start_payment(Client(), product)
    callback = callback_for(payment, request_fields=fields)

    def fails(**kwargs: Any) -> None:  # a receiver after the hook, in its transaction
        raise RuntimeError("receiver down")

    payment_changed.connect(fails, dispatch_uid="test-tasks-fails-immediate")
    try:
        assert post_form(client, "/cmi/callback/", callback).content == b"FAILURE"
    finally:
        payment_changed.disconnect(dispatch_uid="test-tasks-fails-immediate")
    assert not Order.objects.exists()
    assert mailoutbox == []
    assert tasks._HANDED.get() is None
    # CMI's retry commits: one e-mail, for the order that exists.
    assert post_form(client, "/cmi/callback/", callback).content == b"ACTION=POSTAUTH"
    (message,) = mailoutbox
    assert Order.objects.get().number in message.body


def test_a_handed_object_reaches_only_its_task_and_arguments(
    product: Any, client: Client, mailoutbox: list[Any]
) -> None:
    """What enqueue hands over is seen by that task with those arguments only, while it
    is being enqueued; and the e-mail never sends an order other than its own id's."""
    payment, fields = start_payment(Client(), product)
    assert post_form(client, "/cmi/callback/", callback_for(payment, request_fields=fields))
    order = Order.objects.get()
    seen: list[Any] = []
    with transaction.atomic():
        tasks.enqueue(_Spy(seen), order.pk, "fr", hand={"order": "handed"})
        assert seen == []  # after the commit only
    assert seen == [({"order": "handed"}, {}, {})]
    assert tasks._HANDED.get() is None
    other = Order(pk=order.pk + 1000, number="not-this-one")
    with transaction.atomic():
        tasks.enqueue(oscar_tasks.send_confirmation, order.pk, "fr", hand={"order": other})
    assert len(mailoutbox) == 2
    assert order.number in mailoutbox[1].body
    assert "not-this-one" not in mailoutbox[1].body


class _Spy:
    """A stand-in task that records, when enqueued, what :func:`handed` gives itself,
    itself with other arguments, and another task with its arguments."""

    module_path = "tests.adapters.oscar.test_tasks.spy"
    name = "spy"

    def __init__(self, seen: list[Any]) -> None:
        self.seen = seen

    def enqueue(self, order_id: int, lang: str) -> None:
        self.seen.append(
            (
                dict(tasks.handed(self, order_id, lang)),
                dict(tasks.handed(self, order_id + 1, lang)),
                dict(tasks.handed(oscar_tasks.send_confirmation, order_id, lang)),
            )
        )

    def get_backend(self) -> Any:
        return oscar_tasks.send_confirmation.get_backend()
