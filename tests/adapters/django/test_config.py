"""Settings -> CMIConfig, and secrets encrypted at rest."""

from __future__ import annotations

from typing import Any

import pytest
from cmi_django import config as cmi_config
from cmi_django.config import get_config, register_config_resolver
from cmi_django.crypto import DecryptionError, decrypt, encrypt
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from cmi_core import CMIConfig
from tests.adapters.django.testapp.models import Credential

SECRET = "S3cret-Store-Key-never-shown"


def test_default_config_comes_from_settings(settings: Any) -> None:
    settings.CMI_PAYMENTS = {
        "default": {
            "CLIENT_ID": "600000099",
            "STORE_KEY": SECRET,
            "CAPTURE_MODE": "manual",
            "CURRENCY": "MAD",
            "LANG": "ar",
            "BASE_URL": "http://127.0.0.1:8765",
            "SESSION_TIMEOUT": 600,
        }
    }
    config = get_config()
    assert (config.client_id, config.store_key, config.capture_mode) == (
        "600000099",
        SECRET,
        "manual",
    )
    assert (config.currency, config.lang, config.session_timeout) == ("504", "ar", 600)
    assert config.gateway_url == "http://127.0.0.1:8765/fim/est3dgate"
    assert not config.has_api_user


def test_api_deadline_is_a_setting(settings: Any) -> None:
    entry = {"CLIENT_ID": "600000099", "STORE_KEY": SECRET}
    settings.CMI_PAYMENTS = {"default": {**entry, "API_DEADLINE": 12.5}}
    assert get_config().api_deadline == 12.5
    settings.CMI_PAYMENTS = {"default": {**entry, "API_DEADLINE": 0}}
    with pytest.raises(ImproperlyConfigured, match="'API_DEADLINE'"):
        get_config()


def test_settings_are_read_when_used(settings: Any) -> None:
    settings.CMI_PAYMENTS = {"default": {"CLIENT_ID": "111", "STORE_KEY": "k"}}
    assert get_config().client_id == "111"
    settings.CMI_PAYMENTS = {"default": {"CLIENT_ID": "222", "STORE_KEY": "k"}}
    assert get_config().client_id == "222"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"CLIENT_ID": "bad id!", "STORE_KEY": SECRET}, "CMI_PAYMENTS['default']['CLIENT_ID']"),
        ({"CLIENT_ID": "6001", "STORE_KEY": f" {SECRET}"}, "CMI_PAYMENTS['default']['STORE_KEY']"),
        ({"CLIENT_ID": "6001"}, "STORE_KEY required"),
        (
            {"CLIENT_ID": "6001", "STORE_KEY": SECRET, "API_USERNAME": "api"},
            "['API_USERNAME']",
        ),
        ({"CLIENT_ID": "6001", "STORE_KEY": SECRET, "CAPTUR_MODE": "auto"}, "CAPTUR_MODE"),
        (
            {
                "CLIENT_ID": "6001",
                "STORE_KEY": SECRET,
                "ENVIRONMENT": "production",
                "BASE_URL": "http://cmi.example",
            },
            "['BASE_URL']: production requires https",
        ),
    ],
)
def test_bad_settings_name_the_setting_never_the_secret(
    settings: Any, entry: dict[str, Any], expected: str
) -> None:
    settings.CMI_PAYMENTS = {"default": {**entry, "API_PASSWORD": entry.get("API_PASSWORD", "")}}
    with pytest.raises(ImproperlyConfigured) as caught:
        get_config()
    assert expected in str(caught.value)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value.__cause__)


def test_missing_setting_and_missing_key(settings: Any) -> None:
    del settings.CMI_PAYMENTS
    with pytest.raises(ImproperlyConfigured, match="CMI_PAYMENTS"):
        get_config()
    settings.CMI_PAYMENTS = {"default": {"CLIENT_ID": "1", "STORE_KEY": "k"}}
    with pytest.raises(ImproperlyConfigured, match=r"CMI_PAYMENTS\['shop2'\]: no such"):
        get_config("shop2")


def test_resolver_builds_prefixed_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cmi_config, "_RESOLVERS", {})
    seen: list[str] = []

    def resolve(rest: str) -> CMIConfig:
        seen.append(rest)
        return CMIConfig(client_id=f"60000{rest}", store_key="channel-key")

    register_config_resolver("saleor", resolve)
    assert get_config("saleor:7").client_id == "600007"
    assert seen == ["7"]
    with pytest.raises(ImproperlyConfigured):  # no resolver, no setting
        get_config("wagtail:1")


def test_encrypt_round_trip_and_fresh_ciphertext() -> None:
    token = encrypt("sandbox-api-password é")
    assert "sandbox" not in token
    assert decrypt(token) == "sandbox-api-password é"
    assert encrypt("same") != encrypt("same")


def test_key_from_cmi_encryption_key_and_rotation(settings: Any) -> None:
    settings.CMI_ENCRYPTION_KEY = "old-key"
    token = encrypt("secret")
    settings.CMI_ENCRYPTION_KEY = ["new-key", "old-key"]
    assert decrypt(token) == "secret"
    settings.CMI_ENCRYPTION_KEY = "new-key"
    with pytest.raises(DecryptionError):
        decrypt(token)


@pytest.mark.django_db
def test_encrypted_field_stores_ciphertext_only(settings: Any) -> None:
    Credential.objects.create(name="wagtail-1", secret=SECRET)
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM cmi_testapp_credential")
        (stored,) = cursor.fetchone()
    assert SECRET not in stored
    assert decrypt(stored) == SECRET
    assert Credential.objects.get(name="wagtail-1").secret == SECRET


@pytest.mark.django_db
def test_wrong_key_fails_cleanly(settings: Any) -> None:
    Credential.objects.create(name="site", secret=SECRET)
    settings.SECRET_KEY = "another-secret-key"
    with pytest.raises(DecryptionError, match="CMI_ENCRYPTION_KEY") as caught:
        Credential.objects.get(name="site")
    assert SECRET not in str(caught.value)
    settings.SECRET_KEY = "cmi-django-tests-only"
    assert Credential.objects.get(name="site").secret == SECRET


def test_the_derived_key_is_cached_per_secret(settings: Any) -> None:
    """HKDF runs once per secret, not per call; another secret gets another key. A token
    already decrypted under the same keys is not decrypted again (every callback reads
    its store key); under other keys it is (and fails here)."""
    from cmi_django import crypto

    settings.CMI_ENCRYPTION_KEY = "cache-test-key-a"
    token = encrypt("secret")
    before, texts = crypto._fernet_for.cache_info(), crypto._decrypted.cache_info()
    assert decrypt(token) == "secret"
    assert decrypt(token) == "secret"
    after = crypto._fernet_for.cache_info()
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)
    assert crypto._decrypted.cache_info().hits == texts.hits + 1
    settings.CMI_ENCRYPTION_KEY = "cache-test-key-b"  # a changed secret: not the cached key
    with pytest.raises(DecryptionError):
        decrypt(token)
    assert crypto._fernet_for.cache_info().misses == after.misses + 1
    settings.CMI_ENCRYPTION_KEY = "cache-test-key-a"
    assert decrypt(token) == "secret"
