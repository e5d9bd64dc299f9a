"""Secrets at rest: Fernet encryption and a model field that stores only ciphertext.

The key comes from ``CMI_ENCRYPTION_KEY`` or, when it is unset, from ``SECRET_KEY``; either
way a 32-byte Fernet key is derived from it with HKDF-SHA256, so any string will do.
``CMI_ENCRYPTION_KEY`` may also be a list: the first key encrypts, all of them decrypt
(rotate by putting the new key first and re-saving the rows). Changing ``SECRET_KEY``
without setting ``CMI_ENCRYPTION_KEY`` to the old one makes stored secrets unreadable:
:class:`DecryptionError` says so, without the data.
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

__all__ = ["DecryptionError", "EncryptedTextField", "decrypt", "encrypt"]

_INFO = b"cmi-payments secrets at rest v1"


class DecryptionError(ValueError):
    """A stored secret cannot be decrypted with the configured key(s)."""


@functools.lru_cache(maxsize=8)
def _fernet_for(material: tuple[str, ...]) -> MultiFernet:
    fernets = []
    for secret in material:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
        fernets.append(Fernet(base64.urlsafe_b64encode(hkdf.derive(secret.encode("utf-8")))))
    return MultiFernet(fernets)


def _fernet() -> MultiFernet:
    configured = getattr(settings, "CMI_ENCRYPTION_KEY", None)
    if configured:
        keys = (configured,) if isinstance(configured, str) else tuple(configured)
        setting = "CMI_ENCRYPTION_KEY"
    else:
        keys, setting = (getattr(settings, "SECRET_KEY", "") or "",), "SECRET_KEY"
    if not all(isinstance(k, str) and k for k in keys) or not keys:
        raise ImproperlyConfigured(f"{setting}: a non-empty string is needed to encrypt secrets")
    return _fernet_for(keys)


def encrypt(text: str) -> str:
    """``text`` encrypted and authenticated, as an ASCII token."""
    return _fernet().encrypt(text.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    """The text of a token made by :func:`encrypt`; :class:`DecryptionError` otherwise."""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as exc:
        raise DecryptionError(
            "cannot decrypt a stored CMI secret: wrong CMI_ENCRYPTION_KEY (or SECRET_KEY "
            "changed since it was saved), or the data is corrupted"
        ) from exc


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
