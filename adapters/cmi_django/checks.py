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

__all__ = ["CALLBACK_NAMES", "callback_unmounted", "check_encryption_keys", "check_payments"]

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
