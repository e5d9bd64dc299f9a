"""Oscar's order e-mail as a task: CMI's reply first, the e-mail from the worker after.

With the database backend (what production runs, ``django-tasks-db``) the callback only
writes a task row beside the order; ``manage.py db_worker`` sends the e-mail later, in
the shopper's language. Runs on SQLite and on PostgreSQL (dev.py's second pass).
"""

from __future__ import annotations

from typing import Any

import pytest
from cmi_django.signals import payment_changed
from django.test import Client
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
