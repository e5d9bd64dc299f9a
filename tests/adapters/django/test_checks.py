"""System checks of the shared layer (issue #11, item 5): what was silently wrong is an
error at ``manage.py check`` (so ``runserver``, ``migrate``...), naming the setting."""

from __future__ import annotations

import io
from typing import Any

import django
import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

urlpatterns: list[Any] = []  # a URLconf mounting no CMI callback

# Model checks ask the database what it supports (JSONField on Django 6.1).
pytestmark = pytest.mark.django_db


GOOD = {"CLIENT_ID": "600000001", "STORE_KEY": "TEST-STORE-KEY-0001", "CAPTURE_MODE": "auto"}


def found(error_id: str) -> list[checks.CheckMessage]:
    return [m for m in checks.run_checks(include_deployment_checks=True) if m.id == error_id]


def test_the_test_settings_pass_every_check() -> None:
    assert [m for m in checks.run_checks() if m.is_serious()] == []


@pytest.mark.parametrize(
    ("entry", "error_id"),
    [
        ({**GOOD, "STORE_KEY": ""}, "cmi_django.E002"),
        ({"CLIENT_ID": "600000001"}, "cmi_django.E002"),
        ({**GOOD, "CAPTURE_MODE": "automatic"}, "cmi_django.E003"),
        ({**GOOD, "CLIENT_ID": "not a client id!"}, "cmi_django.E004"),
        ({**GOOD, "STORE_KEY_TYPO": "x"}, "cmi_django.E004"),
        ({"STORE_KEY": "TEST-STORE-KEY-0001"}, "cmi_django.E004"),
        ("not a dict", "cmi_django.E001"),
    ],
)
def test_a_wrong_cmi_payments_entry_is_an_error(settings: Any, entry: Any, error_id: str) -> None:
    assert found(error_id) == []
    settings.CMI_PAYMENTS = {"default": GOOD, "shop": entry}
    (error,) = found(error_id)
    assert error.level == checks.ERROR
    assert "CMI_PAYMENTS['shop']" in error.msg
    assert "TEST-STORE-KEY-0001" not in f"{error.msg} {error.hint}"  # never the secret


def test_every_documented_entry_passes_the_checks(settings: Any) -> None:
    """Every ``CMI_PAYMENTS`` entry the loader knows is known to the checks too (the checks
    kept their own list, without ``API_DEADLINE`` and ``HASH_READING``: "unknown entries")."""
    full = {**GOOD, "API_DEADLINE": 25, "HASH_READING": "guide", "HTTP_TIMEOUT": 10}
    settings.CMI_PAYMENTS = {"default": full}
    assert [m for m in checks.run_checks() if m.is_serious()] == []


def test_unknown_capture_mode_fails_check_deploy(settings: Any) -> None:
    """The issue's case: "automatic" passed ``check --deploy``."""
    settings.CMI_PAYMENTS = {"default": {**GOOD, "CAPTURE_MODE": "automatic"}}
    with pytest.raises(SystemCheckError, match=r"cmi_django\.E003"):
        call_command("check", deploy=True, stdout=io.StringIO(), stderr=io.StringIO())


def test_cmi_payments_not_a_dict(settings: Any) -> None:
    settings.CMI_PAYMENTS = ["default"]
    assert found("cmi_django.E001")


def test_encryption_key_settings(settings: Any) -> None:
    assert found("cmi_django.E005") == []
    for name, value in (
        ("CMI_ENCRYPTION_KEY", 42),
        ("CMI_ENCRYPTION_KEY_FALLBACKS", ["ok", ""]),
        ("SECRET_KEY_FALLBACKS", "old-key"),  # fine: a string
    ):
        setattr(settings, name, value)
    assert len(found("cmi_django.E005")) == 2


def test_unmounted_callback_is_an_error(settings: Any) -> None:
    assert found("cmi_django.E006") == []
    settings.ROOT_URLCONF = "tests.adapters.django.test_checks"
    (error,) = found("cmi_django.E006")
    assert 'include("cmi_django.urls")' in (error.hint or "")


_FRAMEWORK = "django.tasks" if django.VERSION >= (6,) else "django_tasks"
IMMEDIATE = {"default": {"BACKEND": f"{_FRAMEWORK}.backends.immediate.ImmediateBackend"}}
DUMMY = {"default": {"BACKEND": f"{_FRAMEWORK}.backends.dummy.DummyBackend"}}


def _database_backend() -> str:
    """django-tasks-db's backend, or the backport's own where that one cannot run (the
    backport older than 0.12, which Wagtail 7.0 to 7.3 pin)."""
    try:
        import django_tasks_db.backend  # noqa: F401
    except Exception:  # noqa: BLE001 - it raises ValueError on an old backport
        return "django_tasks.backends.database.DatabaseBackend"
    return "django_tasks_db.DatabaseBackend"


DATABASE = {"default": {"BACKEND": _database_backend()}}


@pytest.mark.parametrize(
    ("tasks", "enqueue", "expected"),
    [
        (IMMEDIATE, None, {"cmi_django.W001"}),
        (DUMMY, None, {"cmi_django.W002"}),
        (DATABASE, None, set()),
        (IMMEDIATE, "shop.queue.send", set()),
        (DUMMY, "shop.queue.send", set()),
    ],
)
def test_a_task_backend_that_keeps_cmi_waiting_or_never_runs_is_named(
    settings: Any, tasks: dict[str, Any], enqueue: str | None, expected: set[str]
) -> None:
    settings.TASKS = tasks
    settings.CMI_TASKS_ENQUEUE = enqueue
    ids = {m.id for m in checks.run_checks(include_deployment_checks=True)}
    assert ids & {"cmi_django.W001", "cmi_django.W002"} == expected


def test_the_immediate_backend_is_fine_outside_deployment_checks(settings: Any) -> None:
    settings.TASKS = IMMEDIATE
    assert "cmi_django.W001" not in {m.id for m in checks.run_checks()}
