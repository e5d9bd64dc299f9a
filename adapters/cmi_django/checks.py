"""System checks: what is wrong in the settings is an error at ``manage.py check``.

Django runs these before ``runserver``, ``migrate`` and every other command (and
``check --deploy``); an ``Error`` stops them, as Django's own checks do. Each message names
the setting and never shows a secret.

- ``cmi_django.E001``: ``CMI_PAYMENTS`` is not a dict of dicts.
- ``cmi_django.E002``: an entry of ``CMI_PAYMENTS`` has no (or an empty) ``STORE_KEY``.
- ``cmi_django.E003``: an entry's ``CAPTURE_MODE`` is neither ``"auto"`` nor ``"manual"``.
- ``cmi_django.E004``: an entry is invalid otherwise (unknown name, bad client id...).
- ``cmi_django.E005``: ``CMI_ENCRYPTION_KEY``, ``CMI_ENCRYPTION_KEY_FALLBACKS`` or
  ``SECRET_KEY_FALLBACKS`` is not a string or a list of non-empty strings.
- ``cmi_django.E006``: no CMI callback URL is mounted (CMI's server-to-server POST,
  guide §4.2, would find nothing): none of the URL names in :data:`CALLBACK_NAMES`
  resolves.
- ``cmi_django.W001`` (``check --deploy``): the ``default`` task backend runs tasks in the
  request (the immediate backend): CMI's reply then waits for the order e-mail and the
  receipts, and a crash between the commit and the task loses it.
- ``cmi_django.W002``: the ``default`` task backend never runs tasks (the dummy backend):
  no order e-mail, no receipt, no capture after an okUrl approval.
  Neither is raised when ``CMI_TASKS_ENQUEUE`` hands the tasks to the shop's own queue.

Adapters add their own (``cmi_oscar.E001``, ``cmi_saleor.E001``...) with
:func:`callback_unmounted` for their callback view.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import checks
from django.urls import NoReverseMatch, reverse

from cmi_core import CMIConfig, ConfigurationError
from cmi_django.config import SETTINGS

__all__ = [
    "CALLBACK_NAMES",
    "callback_unmounted",
    "check_encryption_keys",
    "check_payments",
    "check_task_backend",
    "check_task_backend_deploy",
]

#: The URL names of every callback view the adapters mount.
CALLBACK_NAMES = (
    "cmi_django:callback",
    "cmi_oscar:callback",
    "cmi_saleor:callback",
    "cmi_wagtail:callback",
)

#: ``CMI_PAYMENTS`` entry name -> ``CMIConfig`` field: the one table the loader uses too.
_ENTRY_NAMES = SETTINGS


def _resolves(name: str) -> bool:
    try:
        reverse(name)
    except NoReverseMatch:
        return False
    return True


def callback_unmounted(name: str, error_id: str, include: str) -> list[checks.CheckMessage]:
    """An ``Error`` with ``error_id`` when the URL ``name`` does not resolve."""
    if _resolves(name):
        return []
    return [
        checks.Error(
            f"CMI's callback URL ({name}) is not mounted: CMI's server-to-server POST "
            "would find no page and no payment would ever be confirmed.",
            hint=f'Add path("cmi/", include("{include}")) to your ROOT_URLCONF.',
            id=error_id,
        )
    ]


def _entry_errors(key: str, entry: Any) -> list[checks.CheckMessage]:
    where = f"CMI_PAYMENTS[{key!r}]"
    if not isinstance(entry, Mapping):
        return [
            checks.Error(
                f"{where} is not a dict.",
                hint='{"CLIENT_ID": "...", "STORE_KEY": "...", "CAPTURE_MODE": "auto"}',
                id="cmi_django.E001",
            )
        ]
    if not entry.get("STORE_KEY"):
        return [
            checks.Error(
                f"{where}['STORE_KEY'] is empty: no callback could ever be verified.",
                hint="Set it to the store key of CMI's Merchant Center (from the "
                "environment or a secrets store, not in the code).",
                id="cmi_django.E002",
            )
        ]
    unknown = sorted(str(n) for n in entry if n not in _ENTRY_NAMES)
    if unknown:
        return [
            checks.Error(
                f"{where}: unknown entries {', '.join(unknown)}.",
                hint=f"Known: {', '.join(sorted(_ENTRY_NAMES))}.",
                id="cmi_django.E004",
            )
        ]
    values = {_ENTRY_NAMES[name]: value for name, value in entry.items()}
    values["base_url"] = values.get("base_url") or None
    try:
        CMIConfig(**values)
    except ConfigurationError as exc:
        if exc.setting == "capture_mode":
            return [
                checks.Error(
                    f"{where}['CAPTURE_MODE'] must be 'auto' or 'manual' "
                    f"(not {entry.get('CAPTURE_MODE')!r}).",
                    hint="'auto' captures on CMI's approval; 'manual' leaves it to staff.",
                    id="cmi_django.E003",
                )
            ]
        name = next((n for n, f in _ENTRY_NAMES.items() if f == exc.setting), exc.setting)
        return [checks.Error(f"{where}[{name!r}]: {exc.rule}.", id="cmi_django.E004")]
    except TypeError:  # CLIENT_ID missing
        return [checks.Error(f"{where}: CLIENT_ID is required.", id="cmi_django.E004")]
    return []


@checks.register()
def check_payments(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``CMI_PAYMENTS`` (E001-E004) and a mounted callback URL (E006)."""
    errors: list[checks.CheckMessage] = []
    payments = getattr(settings, "CMI_PAYMENTS", None)
    if payments is not None and not isinstance(payments, Mapping):
        errors.append(
            checks.Error(
                "CMI_PAYMENTS is not a dict of configurations.",
                hint='CMI_PAYMENTS = {"default": {"CLIENT_ID": ..., "STORE_KEY": ...}}',
                id="cmi_django.E001",
            )
        )
    elif payments:
        for key, entry in payments.items():
            errors.extend(_entry_errors(str(key), entry))
    if not any(_resolves(name) for name in CALLBACK_NAMES):
        errors.append(
            checks.Error(
                "No CMI callback URL is mounted: CMI's server-to-server POST would find no "
                "page and no payment would ever be confirmed.",
                hint='Add path("cmi/", include("cmi_django.urls")) (or your platform '
                "adapter's urls) to your ROOT_URLCONF.",
                id="cmi_django.E006",
            )
        )
    return errors


def _bad_keys(value: Any) -> bool:
    if value is None:
        return False
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        return True
    return not all(isinstance(k, str) and k for k in items)


@checks.register()
def check_encryption_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The keys of :mod:`cmi_django.crypto` (E005)."""
    errors: list[checks.CheckMessage] = []
    for name in ("CMI_ENCRYPTION_KEY", "CMI_ENCRYPTION_KEY_FALLBACKS", "SECRET_KEY_FALLBACKS"):
        if _bad_keys(getattr(settings, name, None)):
            errors.append(
                checks.Error(
                    f"{name} must be a non-empty string or a list of non-empty strings.",
                    hint="See docs/django-layer.md, 'Secrets at rest and key rotation'.",
                    id="cmi_django.E005",
                )
            )
    return errors


def _task_backend() -> str:
    """The dotted path of the ``default`` task backend ("" when the shop queues its own)."""
    if getattr(settings, "CMI_TASKS_ENQUEUE", None):
        return ""
    tasks = getattr(settings, "TASKS", None)
    if not isinstance(tasks, Mapping):
        return "ImmediateBackend"  # Django's default when TASKS is not set
    default = tasks.get("default")
    return str(default.get("BACKEND", "")) if isinstance(default, Mapping) else ""


_HINT = (
    'Use a database backend and its worker (pip install "cmi-payments[tasks]", '
    "django_tasks_db.DatabaseBackend, manage.py db_worker) or CMI_TASKS_ENQUEUE; "
    "see docs/django-layer.md, 'Background work'."
)


@checks.register()
def check_task_backend(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W002: a task backend that never runs the follow-up work."""
    if not _task_backend().endswith("DummyBackend"):
        return []
    return [
        checks.Warning(
            "TASKS['default'] is the dummy backend: CMI's follow-up tasks (order e-mail, "
            "receipts, capture after an okUrl approval) are queued and never run.",
            hint=_HINT,
            id="cmi_django.W002",
        )
    ]


@checks.register(deploy=True)
def check_task_backend_deploy(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W001: the immediate backend in production keeps CMI waiting for the follow-up work."""
    if not _task_backend().endswith("ImmediateBackend"):
        return []
    return [
        checks.Warning(
            "TASKS['default'] is the immediate backend: CMI's reply waits for the order "
            "e-mail and receipts, and work is lost if the process dies after the commit.",
            hint=_HINT,
            id="cmi_django.W001",
        )
    ]
