"""A task of the test app: records that it ran (a HookCall row with method "task")."""

from __future__ import annotations

from cmi_django.tasks import task

from tests.adapters.django.testapp.models import HookCall


@task
def record(oid: str) -> None:
    HookCall.objects.create(oid=oid, method="task")


class BrokerDownError(ConnectionError):
    pass


def _immediate() -> type:
    from importlib import import_module

    from tests.adapters.tasksettings import FRAMEWORK

    return import_module(f"{FRAMEWORK}.backends.immediate").ImmediateBackend  # type: ignore[no-any-return]


class BrokerDownBackend(_immediate()):  # type: ignore[misc]
    """A backend whose broker is unreachable: every enqueue raises."""

    def enqueue(self, task: object, args: object, kwargs: object) -> object:
        raise BrokerDownError("broker unreachable")


#: What :func:`broker_enqueue` sent: (task path, args), as a Celery message would carry.
SENT: list[tuple[str, list[object]]] = []


def broker_enqueue(task: object, args: tuple[object, ...]) -> None:
    """A ``CMI_TASKS_ENQUEUE`` callable standing in for Celery's ``delay``."""
    SENT.append((task.module_path, list(args)))  # type: ignore[attr-defined]
