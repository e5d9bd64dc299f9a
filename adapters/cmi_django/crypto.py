"""Secrets at rest: Fernet encryption and a model field that stores only ciphertext.

The key comes from ``CMI_ENCRYPTION_KEY`` or, when it is unset, from ``SECRET_KEY``; either
way a 32-byte Fernet key is derived from it with HKDF-SHA256, so any string will do.

Key rotation follows Django's ``SECRET_KEY_FALLBACKS``: the current key encrypts, the
current key and the previous ones decrypt (``MultiFernet``):

- with ``CMI_ENCRYPTION_KEY``: the previous keys go in ``CMI_ENCRYPTION_KEY_FALLBACKS``
  (``CMI_ENCRYPTION_KEY`` may also be a list, the first key encrypting);
- without it, ``SECRET_KEY`` is the key and Django's own ``SECRET_KEY_FALLBACKS`` the
  previous ones, so rotating ``SECRET_KEY`` the way Django documents keeps the secrets;
- then ``manage.py cmi_rotate_secrets`` re-encrypts every stored secret under the
  current key, after which the fallbacks can go.

A stored value that no key decrypts raises :class:`DecryptionError`, a
:class:`cmi_core.ConfigurationError` and an ``ImproperlyConfigured`` naming the setting
(callers already turn these into a technical error page, never a 500), without the data.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from cmi_core import ConfigurationError

__all__ = [
    "DecryptionError",
    "EncryptedTextField",
    "decrypt",
    "decryption_keys",
    "encrypt",
    "is_current",
    "key_setting",
]

_INFO = b"cmi-payments secrets at rest v1"


class DecryptionError(ImproperlyConfigured, ConfigurationError):
    """A stored secret cannot be decrypted with the configured key(s).

    ``setting`` names the setting holding the key in use (``CMI_ENCRYPTION_KEY`` or
    ``SECRET_KEY``); the message says where the previous key belongs. Never the data.
    """

    def __init__(self, setting: str, rule: str) -> None:
        ConfigurationError.__init__(self, setting, rule)


@functools.lru_cache(maxsize=8)
def _fernet_for(material: tuple[str, ...]) -> MultiFernet:
    fernets = []
    for secret in material:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
        fernets.append(Fernet(base64.urlsafe_b64encode(hkdf.derive(secret.encode("utf-8")))))
    return MultiFernet(fernets)


def _as_tuple(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(value)
    return (value,)  # refused below: not a string


def _keys() -> tuple[str, tuple[str, ...]]:
    """The setting the current key comes from, and the keys: current first."""
    configured = getattr(settings, "CMI_ENCRYPTION_KEY", None)
    if configured:
        setting = "CMI_ENCRYPTION_KEY"
        keys = (
            *_as_tuple(configured),
            *_as_tuple(getattr(settings, "CMI_ENCRYPTION_KEY_FALLBACKS", None)),
        )
        fallbacks = "CMI_ENCRYPTION_KEY_FALLBACKS"
    else:
        setting = "SECRET_KEY"
        keys = (
            getattr(settings, "SECRET_KEY", "") or "",
            *_as_tuple(getattr(settings, "SECRET_KEY_FALLBACKS", None)),
        )
        fallbacks = "SECRET_KEY_FALLBACKS"
    if not keys or not all(isinstance(k, str) and k for k in keys):
        raise ImproperlyConfigured(
            f"{setting} / {fallbacks}: non-empty strings are needed to encrypt secrets"
        )
    return setting, keys


def decryption_keys() -> tuple[str, ...]:
    """The keys that decrypt now, current first: part of the key of any cache of
    decrypted values (a key removed from the settings then counts at once)."""
    return _keys()[1]


def key_setting() -> str:
    """``"CMI_ENCRYPTION_KEY"`` or ``"SECRET_KEY"``: where the current key comes from."""
    return _keys()[0]


def _fernet() -> MultiFernet:
    return _fernet_for(_keys()[1])


def _current() -> MultiFernet:
    return _fernet_for(_keys()[1][:1])


def encrypt(text: str) -> str:
    """``text`` encrypted and authenticated under the current key, as an ASCII token."""
    return _fernet().encrypt(text.encode("utf-8")).decode("ascii")


def _error() -> DecryptionError:
    setting = key_setting()
    if setting == "SECRET_KEY":
        where = (
            "SECRET_KEY changed since it was saved (put the previous one in "
            "SECRET_KEY_FALLBACKS), or CMI_ENCRYPTION_KEY is unset although it encrypted it"
        )
    else:
        where = (
            "CMI_ENCRYPTION_KEY is not the key it was saved with (put the previous one in "
            "CMI_ENCRYPTION_KEY_FALLBACKS)"
        )
    return DecryptionError(
        setting, f"cannot decrypt a stored CMI secret: {where}, or the data is corrupted"
    )


def decrypt(token: str) -> str:
    """The text of a token made by :func:`encrypt` under any configured key;
    :class:`DecryptionError` otherwise.

    Every callback reads its store key (and Saleor's token) encrypted, with the payment:
    the text of the last few tokens is kept in this process (:func:`_decrypted`), keyed
    by the token and the keys configured, so a secret changed in the database (a new
    token) or a key removed from the settings counts at once."""
    try:
        return _decrypted(_keys()[1], token)
    except (InvalidToken, UnicodeError) as exc:
        raise _error() from exc


@functools.lru_cache(maxsize=64)
def _decrypted(material: tuple[str, ...], token: str) -> str:
    """The text of ``token`` under ``material``'s keys; failures are not kept."""
    return _fernet_for(material).decrypt(token.encode("ascii")).decode("utf-8")


def is_current(token: str) -> bool:
    """Whether ``token`` is encrypted under the current key (no fallback needed)."""
    try:
        _current().decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeError):
        return False
    return True


class EncryptedTextField(models.TextField):
    """A text field stored encrypted; Python code sees the plain text.

    Not searchable or orderable (the ciphertext differs every time). Empty strings and
    ``None`` are stored as they are.
    """

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(str(value))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return decrypt(value)
