"""Follow-up work after a payment change, run through Django's tasks framework.

CMI's callback (guide §4.2.1) is answered once the payment, the platform's record and
the log are committed; what can wait (the order e-mail, a receipt, the capture after an
okUrl approval, the reconciliation) is a *task*, run by the shop's task backend after
the reply. This module is the one place that knows which tasks framework is there:

- ``django.tasks`` on Django 6 and later, else the ``django_tasks`` backport (Django
  5.2; a dependency of ``cmi-payments[django]``, and Wagtail's own);
- :func:`task` makes a plain module-level function a task of that framework, on the
  ``default`` backend of the ``TASKS`` setting;
- :func:`enqueue` hands a task to its backend *inside the current transaction* when the
  backend keeps its queue in the same database (the database backend of
  ``django-tasks-db``, or the backport's own before 0.12): the task row commits or rolls
  back with the payment change, so a crash between the commit and the enqueue cannot lose
  the work, and a rolled-back change leaves nothing queued. Any other backend (the
  immediate one of the demos, a broker) gets the task after the commit
  (``transaction.on_commit``), never for a change that rolled back.

The tasks of the shared layer are here: :data:`capture_after_approval` (the PostAuth of
an approval learned without a callback) and :data:`reconcile` (``cmi_reconcile``, for a
schedule that runs through the worker); the platforms' are in ``cmi_oscar.tasks`` and
``cmi_wagtail.tasks``. Each calls a plain function (named in its docstring). A shop on
Celery sets ``CMI_TASKS_ENQUEUE`` to a callable that sends the task's path and arguments
to its broker after the commit, and runs them with :func:`run` in a ``@shared_task``
(docs/django-layer.md, "Background work").

A task whose backend runs it in this process, inside :func:`enqueue`'s after-commit call
(the immediate backend), may take objects the enqueuer already holds instead of reading
them again (``enqueue(..., hand={"order": order})``, read by :func:`handed`): Oscar's
order e-mail gets the order just placed, as Oscar's own checkout sends it. The hand-off
lives only while that call runs and only for that task and those arguments; a task run
anywhere else (a worker, a broker, later) gets nothing and reads what it needs by its
JSON arguments; a change that rolls back drops it with its after-commit callback.

Importing this module creates the task objects, which asks the ``TASKS`` setting for the
default backend: it is imported on use, never when the apps load.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from types import ModuleType
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import router, transaction
from django.utils.module_loading import import_string

__all__ = [
    "DATABASE_BACKENDS",
    "TASK_MODULES",
    "capture_after_approval",
    "enqueue",
    "framework",
    "handed",
    "in_transaction",
    "reconcile",
    "run",
    "task",
]

logger = logging.getLogger("cmi_django")

#: The modules of the database backends (``django-tasks-db``; the backport's own before
#: 0.12): their tasks are enqueued inside the transaction of the change (module docstring).
DATABASE_BACKENDS = ("django_tasks_db.backend", "django_tasks.backends.database.backend")


def framework() -> ModuleType:
    """``django.tasks`` (Django 6+) or the ``django_tasks`` backport (Django 5.2).

    The same choice as ``django-tasks-db`` makes, so its worker runs these tasks.
    """
    for name in ("django.tasks", "django_tasks"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImproperlyConfigured(
        "cmi_django needs Django's tasks framework: Django 6, or the django-tasks backport "
        '(pip install "cmi-payments[django]")'
    )


def task(func: Callable[..., Any]) -> Any:
    """``func`` as a task of the framework, on the ``default`` backend and queue.

    ``func`` must be a module-level function whose name is the task's (the worker imports
    the task by the function's dotted path); its arguments and result must be JSON.
    """
    return framework().task()(func)


def in_transaction(backend: Any) -> bool:
    """Does ``backend`` keep its queue in the database the payments are written to?"""
    if type(backend).__module__ not in DATABASE_BACKENDS:
        return False
    from cmi_django.models import Payment

    try:
        model = importlib.import_module(type(backend).__module__.rsplit(".", 1)[0] + ".models")
        queue_model = model.DBTaskResult
    except (ImportError, AttributeError):
        return False
    return router.db_for_write(queue_model) == router.db_for_write(Payment)


#: The hand-off of the task being enqueued right now: (task path, arguments, objects).
_HANDED: ContextVar[tuple[str, tuple[Any, ...], dict[str, Any]] | None] = ContextVar(
    "cmi_tasks_handed", default=None
)


def enqueue(work: Any, *args: Any, hand: Mapping[str, Any] | None = None) -> None:
    """Queue ``work(*args)`` (a task of this framework) for after the current change.

    Inside the open transaction when the backend allows it (:func:`in_transaction`): the
    task row is written with the change, and an error here rolls the change back (CMI then
    sends its callback again). Otherwise after the commit; a backend that refuses it then
    is logged (the change is committed: ``cmi_reconcile`` and staff see the payment).
    ``CMI_TASKS_ENQUEUE`` (a dotted path to a callable ``(task, args)``, e.g. one that
    sends it to Celery: docs/django-layer.md) replaces the framework's backend, after the
    commit.

    ``hand``: objects the task may use instead of reading them again, given to it only
    when the backend runs it in this process during the after-commit enqueue (module
    docstring; :func:`handed`); never with the database backend nor ``CMI_TASKS_ENQUEUE``.
    """
    path = getattr(settings, "CMI_TASKS_ENQUEUE", None)
    if path:
        send = import_string(path)
        transaction.on_commit(lambda: _enqueue_after_commit(lambda: send(work, args), work, args))
        return
    if in_transaction(work.get_backend()):
        work.enqueue(*args)
        return
    transaction.on_commit(
        lambda: _enqueue_after_commit(lambda: _enqueue_handing(work, args, hand), work, args)
    )


def _enqueue_handing(work: Any, args: tuple[Any, ...], hand: Mapping[str, Any] | None) -> Any:
    """``work.enqueue(*args)`` with ``hand`` readable by :func:`handed` during the call."""
    if not hand:
        return work.enqueue(*args)
    objects = dict(hand)
    token = _HANDED.set((work.module_path, args, objects))
    try:
        return work.enqueue(*args)
    finally:
        _HANDED.reset(token)
        objects.clear()  # a context copied meanwhile (an asyncio task) holds nothing


def handed(work: Any, *args: Any) -> Mapping[str, Any]:
    """The objects :func:`enqueue` handed to ``work(*args)``, when this very run happens
    inside that enqueue (the immediate backend, right after the commit); else ``{}``.

    Matched on the task's path and its arguments, so no other task, and no later run of
    this one, sees them.
    """
    current = _HANDED.get()
    if current is None or current[0] != work.module_path or current[1] != args:
        return {}
    return current[2]


def _enqueue_after_commit(send: Callable[[], object], work: Any, args: tuple[Any, ...]) -> None:
    try:
        send()
    except Exception:
        logger.exception("could not enqueue the task %s%r", work.name, args)


#: The modules whose tasks :func:`run` accepts.
TASK_MODULES = ("cmi_django.tasks", "cmi_oscar.tasks", "cmi_wagtail.tasks")


def run(path: str, args: list[Any] | tuple[Any, ...]) -> Any:
    """Run the CMI task named ``path`` (``task.module_path``) with ``args``, here and now.

    For a queue of the shop's own (Celery: docs/django-layer.md) that carries the task's
    path and arguments. Only this package's tasks are run: any other path, from a broker
    message nobody should trust to name code, is a :class:`ValueError`.
    """
    module, _, name = str(path).rpartition(".")
    if module not in TASK_MODULES or not name.isidentifier() or name.startswith("_"):
        raise ValueError(f"not a CMI task: {str(path)[:200]!r}")
    work: Any = getattr(importlib.import_module(module), name, None)
    if work is None or getattr(work, "module_path", None) != path:
        raise ValueError(f"not a CMI task: {str(path)[:200]!r}")
    return work.call(*args)


# The shared layer's tasks. Each calls a plain function (the Celery path).


@task
def capture_after_approval(payment_id: int, label: str) -> None:
    """:func:`cmi_django.operations.capture_after_approval` as a task."""
    from cmi_django import operations

    operations.capture_after_approval(payment_id, label)


@task
def reconcile(
    older_than: int = 30, platform: str | None = None, max_age: int = 7
) -> dict[str, int]:
    """:func:`cmi_django.reconcile.reconcile` as a task; returns its counts."""
    from cmi_django import reconcile as module

    return module.reconcile(older_than=older_than, platform=platform, max_age=max_age).as_dict()
