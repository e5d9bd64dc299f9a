"""Follow-up work through Django's tasks framework (:mod:`cmi_django.tasks`).

- :func:`~cmi_django.tasks.enqueue` with the database backend writes the task row in the
  change's transaction (rolled back with it, committed with it); with the immediate
  backend the task runs after the commit, never for a change that rolled back.
- The capture after an okUrl approval and the reconciliation run on the worker
  (``manage.py db_worker``), against the real emulator.
"""

from __future__ import annotations

import gc
import threading
import weakref
from io import StringIO
from typing import Any

import pytest
from cmi_django import services, tasks
from cmi_django.models import Operation, Payment
from django.core.management import call_command
from django.db import transaction

from cmi_core import PaymentState
from cmi_core.sandbox import Sandbox
from tests.adapters.django.test_operations import (  # noqa: F401 - fixture
    _auto_with_lost_callback,
    hook_calls,
    merchant,
    return_fields,
)
from tests.adapters.django.testapp import tasks as test_tasks
from tests.adapters.django.testapp.models import HookCall
from tests.adapters.tasks_support import SUCCEEDED, WAITING, run_worker, task_rows
from tests.adapters.tasksettings import DATABASE_TASKS, FRAMEWORK, IMMEDIATE_TASKS
from tests.sandbox.support import Browser, Merchant

from .conftest import AMOUNT, order

pytestmark = pytest.mark.django_db(transaction=True)

CAPTURE_TASK = "cmi_django.tasks.capture_after_approval"
RECORD_TASK = "tests.adapters.django.testapp.tasks.record"


def test_the_framework_is_django_tasks_on_django_6_and_the_backport_before() -> None:
    assert tasks.framework().__name__ == FRAMEWORK
    assert type(tasks.capture_after_approval).__module__.startswith(f"{FRAMEWORK}.")
    assert tasks.capture_after_approval.module_path == CAPTURE_TASK


def test_database_backend_rows_commit_and_roll_back_with_the_change(settings: Any) -> None:
    settings.TASKS = DATABASE_TASKS
    seen_inside = []

    def change_that_fails() -> None:
        with transaction.atomic():
            tasks.enqueue(test_tasks.record, "rolled-back")
            seen_inside.append(len(task_rows(RECORD_TASK)))
            raise RuntimeError("the change fails after its task was queued")

    with pytest.raises(RuntimeError):
        change_that_fails()
    assert seen_inside == [1]  # written inside the transaction...
    assert task_rows(RECORD_TASK) == []  # ...and rolled back with it
    with transaction.atomic():
        tasks.enqueue(test_tasks.record, "committed")
    (row,) = task_rows(RECORD_TASK)
    assert (row.status in WAITING, row.args_kwargs["args"]) == (True, ["committed"])
    assert not HookCall.objects.exists()  # nothing runs before a worker does
    run_worker()
    assert list(HookCall.objects.values_list("oid", "method")) == [("committed", "task")]
    (row,) = task_rows(RECORD_TASK)
    assert row.status in SUCCEEDED


def test_immediate_backend_runs_the_task_after_the_commit_only(settings: Any) -> None:
    settings.TASKS = IMMEDIATE_TASKS

    def change_that_fails() -> None:
        with transaction.atomic():
            tasks.enqueue(test_tasks.record, "rolled-back")
            raise RuntimeError("the change fails")

    with pytest.raises(RuntimeError):
        change_that_fails()
    with transaction.atomic():
        tasks.enqueue(test_tasks.record, "committed")
        assert not HookCall.objects.exists()  # not inside the transaction
    assert list(HookCall.objects.values_list("oid", flat=True)) == ["committed"]


def test_a_backend_that_refuses_the_task_after_the_commit_is_logged(
    settings: Any, caplog: Any
) -> None:
    backend = "tests.adapters.django.testapp.tasks.BrokerDownBackend"
    settings.TASKS = {"default": {"BACKEND": backend}}
    with transaction.atomic():
        HookCall.objects.create(oid="change", method="authorised")
        tasks.enqueue(test_tasks.record, "refused")
    assert list(HookCall.objects.values_list("oid", flat=True)) == ["change"]  # committed
    assert "could not enqueue the task record" in caplog.text


def test_celery_path_sends_after_the_commit_and_runs_only_cmi_tasks(settings: Any) -> None:
    settings.CMI_TASKS_ENQUEUE = "tests.adapters.django.testapp.tasks.broker_enqueue"
    test_tasks.SENT.clear()

    def change_that_fails() -> None:
        with transaction.atomic():
            tasks.enqueue(tasks.reconcile)
            raise RuntimeError("the change fails")

    with pytest.raises(RuntimeError):
        change_that_fails()
    assert test_tasks.SENT == []
    with transaction.atomic():
        tasks.enqueue(tasks.reconcile, 30, None, 0)
        assert test_tasks.SENT == []  # not before the commit
    assert test_tasks.SENT == [("cmi_django.tasks.reconcile", [30, None, 0])]
    # The Celery worker's side: the message's path and arguments, run through `run`.
    path, args = test_tasks.SENT[0]
    assert tasks.run(path, args) == {"checked": 0, "changed": 0, "failed": 0, "left_old": 0}
    for hostile in (
        "os.system",
        "cmi_django.tasks.logger",
        "cmi_django.tasks._enqueue_after_commit",
        "cmi_django.models.Payment",
        RECORD_TASK,
    ):
        with pytest.raises(ValueError, match="not a CMI task"):
            tasks.run(hostile, ["echo"])


@pytest.fixture
def lost_callback_paid(
    sandbox_settings: Sandbox,
    merchant: Merchant,  # noqa: F811 - the fixture imported above
    settings: Any,
) -> Any:
    """Auto mode; paid on the emulator, its callback answered FAILURE (lost): CMI: PRE."""
    entry = {**settings.CMI_PAYMENTS["default"], "CAPTURE_MODE": "auto"}
    settings.CMI_PAYMENTS = {"default": entry}
    merchant.reply = "FAILURE"
    payment, request = services.create_payment(
        platform="test",
        reference="basket-9",
        order=order(callback_url=f"{merchant.base_url}/callback"),
    )
    browser = Browser(sandbox_settings)
    browser.open(request.fields)
    browser.pay()
    sandbox_settings.wait_for_callbacks()
    return payment, browser


def test_ok_return_queues_the_capture_and_the_worker_captures(
    settings: Any, sandbox_settings: Sandbox, lost_callback_paid: Any
) -> None:
    settings.TASKS = DATABASE_TASKS
    payment, browser = lost_callback_paid
    outcome = services.handle_return(return_fields(browser), kind="ok")
    assert (outcome.verified, outcome.approved) == (True, True)
    payment.refresh_from_db()
    # The shopper's page did not wait for CMI's API: the capture is queued, not sent.
    assert (payment.state, payment.capture_mode) == (PaymentState.AUTHORISED, "manual")
    assert not Operation.objects.filter(payment=payment, kind="capture").exists()
    assert sandbox_settings.order(payment.oid).state == "PRE"
    (row,) = task_rows(CAPTURE_TASK)
    assert row.args_kwargs["args"] == [payment.pk, "okurl"]
    run_worker()
    payment.refresh_from_db()
    assert (payment.state, payment.captured_amount) == (PaymentState.CAPTURED, AMOUNT)
    capture = Operation.objects.get(payment=payment, kind="capture")
    assert (capture.succeeded, capture.key) == (True, "okurl-capture")
    assert sandbox_settings.order(payment.oid).state == "POST"
    assert [m for m, _ in hook_calls(payment)] == ["authorised", "captured"]
    run_worker()  # nothing left: captured once
    assert Operation.objects.filter(payment=payment, kind="capture").count() == 1


def test_ok_return_whose_hook_fails_queues_no_capture(
    settings: Any, sandbox_settings: Sandbox, lost_callback_paid: Any
) -> None:
    settings.TASKS = DATABASE_TASKS
    payment, browser = lost_callback_paid
    Payment.objects.filter(pk=payment.pk).update(data={"hook_raises": True})
    outcome = services.handle_return(return_fields(browser), kind="ok")
    assert outcome.approved is False
    payment.refresh_from_db()
    assert payment.state == PaymentState.NEEDS_ATTENTION  # flagged, nothing to capture
    assert task_rows(CAPTURE_TASK) == []
    run_worker()
    assert sandbox_settings.order(payment.oid).state == "PRE"


def test_cmi_reconcile_enqueue_runs_on_the_worker(
    settings: Any,
    sandbox_settings: Sandbox,
    merchant: Merchant,  # noqa: F811 - the fixture imported above
) -> None:
    settings.TASKS = DATABASE_TASKS
    payment = _auto_with_lost_callback(sandbox_settings, merchant, settings)
    Payment.objects.filter(pk=payment.pk).update(updated_at=payment.updated_at.replace(year=2020))
    out = StringIO()
    call_command("cmi_reconcile", "--enqueue", "--max-age", "0", stdout=out)
    (row,) = task_rows("cmi_django.tasks.reconcile")
    assert out.getvalue().strip() == f"reconciliation queued as task {row.id}"
    assert row.args_kwargs["kwargs"] == {"older_than": 30, "platform": None, "max_age": 0}
    payment.refresh_from_db()
    assert payment.state == PaymentState.REDIRECTED  # nothing asked yet
    run_worker()  # the reconciliation, then the capture it queued
    payment.refresh_from_db()
    assert (payment.state, payment.captured_amount) == (PaymentState.CAPTURED, AMOUNT)
    assert sandbox_settings.order(payment.oid).state == "POST"
    rows = {r.task_path: r for r in task_rows()}
    assert set(rows) == {"cmi_django.tasks.reconcile", CAPTURE_TASK}
    assert all(r.status in SUCCEEDED for r in rows.values())
    assert rows["cmi_django.tasks.reconcile"].return_value == {
        "checked": 1,
        "changed": 1,
        "failed": 0,
        "left_old": 0,
    }


class _Held:
    """An object handed to a task (an order, say)."""


class _HandSpy:
    """A stand-in task: when enqueued, what :func:`tasks.handed` gives it here, and in
    another thread (a gthread worker's next request) at that very moment."""

    module_path = "tests.adapters.django.test_tasks.hand_spy"
    name = "hand_spy"

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.seen: list[tuple[bool, bool]] = []

    def enqueue(self, *args: Any) -> None:
        elsewhere: list[bool] = []
        thread = threading.Thread(target=lambda: elsewhere.append(bool(tasks.handed(self, *args))))
        thread.start()
        thread.join()
        self.seen.append((bool(tasks.handed(self, *args)), elsewhere[0]))

    def get_backend(self) -> Any:
        return self.backend


@pytest.mark.parametrize("backend", ["immediate", "database", "celery"])
def test_a_handed_object_stays_in_its_thread_and_run_and_is_not_kept(
    settings: Any, backend: str
) -> None:
    """``enqueue(..., hand=...)``: seen by the task only when the immediate backend runs
    it right after the commit, in that thread; never by another thread, nor with the
    database backend or CMI_TASKS_ENQUEUE (whose task runs elsewhere, later), nor by a
    change that rolled back; and nothing keeps the object once the change is done."""
    settings.TASKS = DATABASE_TASKS if backend == "database" else IMMEDIATE_TASKS
    if backend == "celery":
        settings.CMI_TASKS_ENQUEUE = "tests.adapters.django.testapp.tasks.broker_enqueue"
        test_tasks.SENT.clear()
    spy = _HandSpy(test_tasks.record.get_backend())
    box = [_Held()]
    kept = weakref.ref(box[0])

    def change_that_fails() -> None:
        with transaction.atomic():
            tasks.enqueue(spy, 7, "ar", hand={"order": box[0]})
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        change_that_fails()
    with transaction.atomic():
        tasks.enqueue(spy, 7, "ar", hand={"order": box[0]})
    # The database backend queues inside each change (the row rolls back with it).
    expected = {
        "immediate": [(True, False)],
        "database": [(False, False), (False, False)],
        "celery": [],
    }
    assert spy.seen == expected[backend]
    if backend == "celery":
        sent = test_tasks.SENT
        assert sent == [(spy.module_path, [7, "ar"])]  # the arguments only
    box.clear()
    gc.collect()
    assert kept() is None  # no context, callback or result holds it
