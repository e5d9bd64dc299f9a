"""Secrets at rest survive a key rotation (issue #11, item 5).

Values encrypted under a previous ``CMI_ENCRYPTION_KEY`` (or ``SECRET_KEY``) decrypt
through ``CMI_ENCRYPTION_KEY_FALLBACKS`` (``SECRET_KEY_FALLBACKS``), ``manage.py
cmi_rotate_secrets`` re-encrypts them under the current key, and a value no key decrypts
is a ``ConfigurationError`` naming the setting, without the data.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from cmi_django.crypto import DecryptionError, decrypt, encrypt, is_current
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from cmi_core import ConfigurationError
from tests.adapters.django.testapp.models import Credential

SECRET = "TEST-STORE-KEY-ROTATED-0042"


def stored(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM cmi_testapp_credential WHERE id = %s", [pk])
        (value,) = cursor.fetchone()
    return str(value)


def rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("cmi_rotate_secrets", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_cmi_encryption_key_fallbacks_decrypt_old_values(settings: Any) -> None:
    settings.CMI_ENCRYPTION_KEY = "key-2025"
    token = encrypt(SECRET)
    settings.CMI_ENCRYPTION_KEY = "key-2026"
    with pytest.raises(DecryptionError):
        decrypt(token)
    settings.CMI_ENCRYPTION_KEY_FALLBACKS = ["key-2025"]
    assert decrypt(token) == SECRET
    assert not is_current(token)
    assert is_current(encrypt(SECRET))  # new values use the current key only


def test_secret_key_fallbacks_decrypt_old_values(settings: Any) -> None:
    """Rotating SECRET_KEY the way Django documents it keeps the stored secrets."""
    settings.CMI_ENCRYPTION_KEY = None
    settings.SECRET_KEY = "old-django-secret-key"
    token = encrypt(SECRET)
    settings.SECRET_KEY = "new-django-secret-key"
    settings.SECRET_KEY_FALLBACKS = ["old-django-secret-key"]
    assert decrypt(token) == SECRET
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(DecryptionError) as caught:
        decrypt(token)
    assert caught.value.setting == "SECRET_KEY"
    assert "SECRET_KEY_FALLBACKS" in str(caught.value)


def test_a_wrong_key_is_a_configuration_error_naming_the_setting(settings: Any) -> None:
    settings.CMI_ENCRYPTION_KEY = "key-a"
    token = encrypt(SECRET)
    settings.CMI_ENCRYPTION_KEY = "key-b"
    with pytest.raises(ConfigurationError) as caught:
        decrypt(token)
    error = caught.value
    assert isinstance(error, ImproperlyConfigured)  # what the payment paths already catch
    assert error.setting == "CMI_ENCRYPTION_KEY"
    assert "CMI_ENCRYPTION_KEY_FALLBACKS" in str(error)
    assert SECRET not in f"{error} {error!r} {error.rule}"
    assert token not in str(error)


@pytest.mark.django_db
def test_rotate_command_reencrypts_every_value(settings: Any) -> None:
    settings.CMI_ENCRYPTION_KEY = "key-2025"
    old = [Credential.objects.create(name=f"site-{i}", secret=f"{SECRET}-{i}") for i in range(3)]
    empty = Credential.objects.create(name="empty", secret="")
    settings.CMI_ENCRYPTION_KEY = "key-2026"
    settings.CMI_ENCRYPTION_KEY_FALLBACKS = ["key-2025"]
    current = Credential.objects.create(name="new", secret="already-under-2026")
    before = {c.pk: stored(c.pk) for c in [*old, current]}

    dry = rotate("--dry-run")
    assert "would re-encrypt 3 value(s); 1 already current" in dry
    assert "cmi_testapp.Credential.secret: 4 value(s), 3 to re-encrypt" in dry
    assert {c.pk: stored(c.pk) for c in [*old, current]} == before  # nothing written

    out = rotate()
    assert "re-encrypted 3 value(s); 1 already current" in out
    assert SECRET not in out
    for c in old:
        assert stored(c.pk) != before[c.pk]
        assert is_current(stored(c.pk))
    assert stored(current.pk) == before[current.pk]
    assert stored(empty.pk) == ""

    settings.CMI_ENCRYPTION_KEY_FALLBACKS = []  # the old key can go now
    assert [Credential.objects.get(pk=c.pk).secret for c in old] == [
        f"{SECRET}-{i}" for i in range(3)
    ]
    assert "re-encrypted 0 value(s); 4 already current" in rotate()


@pytest.mark.django_db
def test_rotate_command_reports_values_no_key_decrypts(settings: Any) -> None:
    settings.CMI_ENCRYPTION_KEY = "lost-key"
    lost = Credential.objects.create(name="lost", secret=SECRET)
    settings.CMI_ENCRYPTION_KEY = "key-2025"
    kept = Credential.objects.create(name="kept", secret="kept-secret")
    settings.CMI_ENCRYPTION_KEY = "key-2026"
    settings.CMI_ENCRYPTION_KEY_FALLBACKS = ["key-2025"]
    lost_before = stored(lost.pk)
    err = io.StringIO()
    with pytest.raises(CommandError, match="CMI_ENCRYPTION_KEY_FALLBACKS") as caught:
        call_command("cmi_rotate_secrets", stdout=io.StringIO(), stderr=err)
    assert SECRET not in str(caught.value)
    assert f"cmi_testapp.Credential.secret pk={lost.pk}" in err.getvalue()
    assert stored(lost.pk) == lost_before  # left as it was
    assert is_current(stored(kept.pk))  # the others were rotated all the same
