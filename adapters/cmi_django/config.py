"""Django settings -> :class:`cmi_core.CMIConfig`, read when used, never at import.

``CMI_PAYMENTS = {"default": {"CLIENT_ID": ..., "STORE_KEY": ..., ...}}`` holds one entry
per config key. Keys of the form ``"<prefix>:<rest>"`` whose prefix has a resolver
(:func:`register_config_resolver`) are built by that resolver instead (Saleor channels,
Wagtail sites keep their credentials, encrypted, in their own models). Errors are
:class:`~django.core.exceptions.ImproperlyConfigured` naming the setting, never a secret.

A resolver may also say how to read its row in the same statement as the payment
(``joined``, a :class:`JoinedConfig`): CMI's callback then reads the locked payment and
its store key in one query (:func:`config_annotations`, :func:`config_of`). The row is
read afresh by every callback, in the callback's transaction: a rotated store key counts
at once, in every process (nothing is remembered between requests).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS

from cmi_core import CMIConfig, ConfigurationError
from cmi_django import statements

if TYPE_CHECKING:
    from django.db.models import Expression

__all__ = [
    "JoinedConfig",
    "config_annotations",
    "config_of",
    "get_config",
    "register_config_resolver",
]

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


@dataclass(frozen=True)
class JoinedConfig:
    """How a resolver's row is read in the payment's own statement.

    ``expression(alias)``: an expression over the payment's row (its ``config_key``
    column) giving the config row's values, NULL when there is none (e.g. a ``RawSQL``
    subquery of JSON text), written for the database ``alias`` names (the one the payment
    is read from, which need not be ``default``); None when it cannot be written for that
    database (the resolver is then called). ``build(rest, value)``: the
    :class:`CMIConfig` from that value (raise ``ImproperlyConfigured`` as the resolver
    would when it is NULL).
    """

    expression: Callable[[str], Expression | None]
    build: Callable[[str, Any], CMIConfig]


_JOINED: dict[str, JoinedConfig] = {}


def register_config_resolver(
    prefix: str, fn: Resolver, *, joined: JoinedConfig | None = None
) -> None:
    """Build the configs of keys ``"<prefix>:<rest>"`` with ``fn(rest)``.

    ``fn`` returns a :class:`CMIConfig` (e.g. :func:`config_from_mapping` over a model's
    decrypted fields) or raises ``ImproperlyConfigured``. ``joined``: how to read the same
    row within the payment's statement (see the module docstring).
    """
    name = prefix.rstrip(":")
    _RESOLVERS[name] = fn
    if joined is None:
        _JOINED.pop(name, None)
    else:
        _JOINED[name] = joined
    statements.bump()  # the callback's read joins what is registered now


def _annotation(prefix: str) -> str:
    return f"_cmi_config_{prefix}"


def config_annotations(alias: str = DEFAULT_DB_ALIAS) -> dict[str, Expression]:
    """The annotations that read every joinable config with a payment read from the
    database ``alias`` (module docstring).

    Each is NULL unless the payment's key has its prefix (the expression's own condition),
    so one statement serves every platform's payments.
    """
    annotations = {}
    for prefix, joined in _JOINED.items():
        expression = joined.expression(alias)
        if expression is not None:
            annotations[_annotation(prefix)] = expression
    return annotations


def config_of(payment: Any) -> CMIConfig:
    """The config of ``payment`` (a :class:`~cmi_django.models.Payment`): from the row
    read with it (:func:`config_annotations`) when there is one, else :func:`get_config`."""
    config_key: str = payment.config_key
    prefix, colon, rest = config_key.partition(":")
    joined = _JOINED.get(prefix) if colon else None
    name = _annotation(prefix)
    if joined is not None and prefix in _RESOLVERS and name in vars(payment):
        return joined.build(rest, vars(payment)[name])
    return get_config(config_key)


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
