"""The Wagtail receipt as a task: CMI's reply first, the e-mail from the worker after.

With the database backend the callback writes a task row with the payment; ``manage.py
db_worker`` sends the receipt later, in the payer's language. SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
from cmi_wagtail.models import CMISettings, PaymentPage
from django.test import Client

from cmi_core.testing import make_callback
from tests.adapters.tasks_support import SUCCEEDED, WAITING, run_worker, task_rows
from tests.adapters.tasksettings import DATABASE_TASKS
from tests.adapters.wagtail.test_flow import csrf_client, pay, post_form  # noqa: F401

from .conftest import STORE_KEY

pytestmark = pytest.mark.django_db(transaction=True)

RECEIPT_TASK = "cmi_wagtail.tasks.send_receipt"


def test_receipt_is_queued_with_the_payment_and_sent_by_the_worker(
    settings: Any,
    pay_page: PaymentPage,
    cmi_settings: CMISettings,
    csrf_client: Client,  # noqa: F811 - the fixture imported above
    mailoutbox: list[Any],
) -> None:
    settings.TASKS = DATABASE_TASKS
    cmi_settings.send_receipts = True
    cmi_settings.save()
    payment, request_fields = pay(Client(), pay_page)
    callback = make_callback(
        STORE_KEY, oid=payment.oid, amount=payment.amount, request_fields=request_fields
    )
    assert post_form(csrf_client, "/cmi/callback/", callback).content == b"ACTION=POSTAUTH"
    assert mailoutbox == []  # CMI's reply did not wait for the e-mail
    (row,) = task_rows(RECEIPT_TASK)
    assert (row.status in WAITING, row.args_kwargs["args"]) == (True, [payment.pk])
    run_worker()
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["amina@example.ma"]
    assert mailoutbox[0].body.startswith("Bonjour Amina Test,")  # the payer's French
    (row,) = task_rows(RECEIPT_TASK)
    assert row.status in SUCCEEDED
    assert row.return_value is True
