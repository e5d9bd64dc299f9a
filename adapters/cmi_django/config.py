"""Django settings -> :class:`cmi_core.CMIConfig`, read when used, never at import.

``CMI_PAYMENTS = {"default": {"CLIENT_ID": ..., "STORE_KEY": ..., ...}}`` holds one entry
per config key. Keys of the form ``"<prefix>:<rest>"`` whose prefix has a resolver
(:func:`register_config_resolver`) are built by that resolver instead (Saleor channels,
Wagtail sites keep their credentials, encrypted, in their own models). Errors are
:class:`~django.core.exceptions.ImproperlyConfigured` naming the setting, never a secret.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from cmi_core import CMIConfig, ConfigurationError

__all__ = ["get_config", "register_config_resolver"]

#: ``CMI_PAYMENTS`` entry name -> ``CMIConfig`` field.
SETTINGS = {
    "CLIENT_ID": "client_id",
    "STORE_KEY": "store_key",
    "ENVIRONMENT": "environment",
    "BASE_URL": "base_url",
    "API_USERNAME": "api_username",
    "API_PASSWORD": "api_password",
    "CURRENCY": "currency",
    "LANG": "lang",
    "CAPTURE_MODE": "capture_mode",
    "SESSION_TIMEOUT": "session_timeout",
    "HTTP_TIMEOUT": "http_timeout",
    "API_DEADLINE": "api_deadline",
    "HASH_READING": "hash_reading",
}
_NAMES = {field: name for name, field in SETTINGS.items()}

Resolver = Callable[[str], CMIConfig]
_RESOLVERS: dict[str, Resolver] = {}


def register_config_resolver(prefix: str, fn: Resolver) -> None:
    """Build the configs of keys ``"<prefix>:<rest>"`` with ``fn(rest)``.

    ``fn`` returns a :class:`CMIConfig` (e.g. :func:`config_from_mapping` over a model's
    decrypted fields) or raises ``ImproperlyConfigured``.
    """
    _RESOLVERS[prefix.rstrip(":")] = fn


def get_config(config_key: str = "default") -> CMIConfig:
    """The :class:`CMIConfig` for ``config_key`` (see the module docstring)."""
    prefix, colon, rest = config_key.partition(":")
    if colon and prefix in _RESOLVERS:
        return _RESOLVERS[prefix](rest)
    payments = getattr(settings, "CMI_PAYMENTS", None)
    if not isinstance(payments, Mapping):
        raise ImproperlyConfigured(
            "CMI_PAYMENTS: set it to a dict of configurations, e.g. "
            '{"default": {"CLIENT_ID": ..., "STORE_KEY": ...}}'
        )
    entry = payments.get(config_key)
    if entry is None:
        raise ImproperlyConfigured(f"CMI_PAYMENTS[{config_key!r}]: no such configuration")
    return config_from_mapping(entry, setting=f"CMI_PAYMENTS[{config_key!r}]")


def config_from_mapping(entry: Mapping[str, Any], *, setting: str) -> CMIConfig:
    """A :class:`CMIConfig` from upper-case names (``CLIENT_ID``...); errors name ``setting``."""
    if not isinstance(entry, Mapping):
        raise ImproperlyConfigured(f"{setting}: must be a dict")
    unknown = sorted(str(name) for name in entry if name not in SETTINGS)
    if unknown:
        raise ImproperlyConfigured(
            f"{setting}: unknown entries {', '.join(unknown)} "
            f"(known: {', '.join(sorted(SETTINGS))})"
        )
    values = {SETTINGS[name]: value for name, value in entry.items()}
    values["base_url"] = values.get("base_url") or None
    try:
        return CMIConfig(**values)
    except ConfigurationError as exc:
        name = _NAMES.get(exc.setting, exc.setting.upper())
        raise ImproperlyConfigured(f"{setting}[{name!r}]: {exc.rule}") from None
    except TypeError:  # a missing CLIENT_ID or STORE_KEY
        missing = [n for n in ("CLIENT_ID", "STORE_KEY") if n not in entry]
        raise ImproperlyConfigured(f"{setting}: {', '.join(missing)} required") from None
