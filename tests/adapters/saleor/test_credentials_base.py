"""Saleor's channel form on the shared credentials base: one validation, write-only secrets."""

from __future__ import annotations

from typing import Any

import pytest
from cmi_django.credentials import CredentialsModel
from cmi_saleor.forms import ChannelConfigurationForm
from cmi_saleor.models import ChannelConfiguration

pytestmark = pytest.mark.django_db

KEY = "A-VERY-SECRET-STORE-KEY-42"


def values(installation: Any, **overrides: Any) -> dict[str, Any]:
    data = {
        "installation": installation.pk,
        "channel": "default-channel",
        "enabled": True,
        "client_id": "600000001",
        "store_key": KEY,
        "api_username": "api",
        "api_password": "api-password-secret",
        "capture_mode": "auto",
        "environment": "test",
        "base_url": "",
        "lang": "fr",
    }
    data.update(overrides)
    return data


def test_the_channel_is_a_shared_credentials_model() -> None:
    assert issubclass(ChannelConfiguration, CredentialsModel)


def test_a_refusal_is_on_the_field_at_fault_with_the_core_rule(installation: Any) -> None:
    form = ChannelConfigurationForm(
        values(installation, environment="production", base_url="http://127.0.0.1:8765")
    )
    assert not form.is_valid()
    assert form.errors == {"base_url": ["production requires https"]}
    assert not ChannelConfiguration.objects.exists()


def test_a_password_without_an_api_user_is_dropped(installation: Any) -> None:
    form = ChannelConfigurationForm(values(installation, api_username=""))
    assert form.is_valid(), form.errors
    saved = form.save()
    assert (saved.api_username, saved.api_password) == ("", "")
    assert not saved.cmi_config().has_api_user


def test_secrets_render_empty_and_empty_keeps_them(installation: Any) -> None:
    first = ChannelConfigurationForm(values(installation))
    assert first.is_valid(), first.errors
    channel = first.save()
    page = str(ChannelConfigurationForm(instance=channel))
    assert KEY not in page
    assert "api-password-secret" not in page
    assert "Stored: ••••••••…42." in page  # the mask, all that is shown of it
    again = ChannelConfigurationForm(
        values(installation, store_key="", api_password="", lang="ar"), instance=channel
    )
    assert again.is_valid(), again.errors
    again.save()
    channel.refresh_from_db()
    assert (channel.store_key, channel.api_password, channel.lang) == (
        KEY,
        "api-password-secret",
        "ar",
    )
