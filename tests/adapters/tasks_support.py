"""The task queue in tests: its rows, and the real worker of the database backend.

Tests that use them switch to the database backend (``settings.TASKS = DATABASE_TASKS``)
and are transactional (``django_db(transaction=True)``): the worker closes and reopens
database connections as in production, which a test wrapped in one transaction cannot
survive.
"""

from __future__ import annotations

import signal
from importlib import import_module
from io import StringIO
from typing import Any

from django.core.management import call_command

from tests.adapters.tasksettings import DATABASE_APP

#: The statuses of a task that ran to its end (django-tasks < 0.12 calls it SUCCEEDED).
SUCCEEDED = {"SUCCESSFUL", "SUCCEEDED"}
#: The statuses of a task still waiting for a worker.
WAITING = {"READY", "NEW"}


def task_rows(path: str | None = None) -> list[Any]:
    """The queue's rows (``DBTaskResult``), oldest first; ``path``: of that task only."""
    model = import_module(f"{DATABASE_APP}.models").DBTaskResult
    rows = model.objects.order_by("enqueued_at")
    return list(rows.filter(task_path=path) if path else rows)


def run_worker() -> str:
    """``manage.py db_worker --batch``: run every queued task, then return its output.

    The worker installs its own SIGINT/SIGTERM handlers; pytest's are put back after.
    """
    names = [s for s in ("SIGINT", "SIGTERM", "SIGQUIT") if hasattr(signal, s)]
    saved = {name: signal.getsignal(getattr(signal, name)) for name in names}
    out = StringIO()
    try:
        call_command("db_worker", "--batch", "--no-startup-delay", stdout=out, stderr=out)
    finally:
        for name, handler in saved.items():
            signal.signal(getattr(signal, name), handler)
    return out.getvalue()
