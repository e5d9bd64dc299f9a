"""Per-channel configuration: the Dashboard page's API (JWT) and Django admin."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cmi_django.config import get_config
from cmi_saleor.models import ChannelConfiguration
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from cmi_core.sandbox import DEFAULT_MERCHANT
from tests.adapters.saleor.standin import FakeSaleor, _key

pytestmark = pytest.mark.django_db

SECRET = "A-VERY-SECRET-STORE-KEY-42"


def api(client: Client, saleor: FakeSaleor, token: str, body: Any = None) -> Any:
    headers = {"HTTP_AUTHORIZATION_BEARER": token, "HTTP_SALEOR_API_URL": saleor.api_url}
    if body is None:
        return client.get("/app/api/configuration", **headers)
    return client.post(
        "/app/api/configuration", data=json.dumps(body), content_type="application/json", **headers
    )


def channel_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "channel": "default-channel",
        "client_id": "600000001",
        "store_key": SECRET,
        "api_username": "api",
        "api_password": "api-password-secret",
        "capture_mode": "manual",
        "environment": "test",
        "lang": "en",
        "base_url": "",
    }
    body.update(overrides)
    return body


def test_staff_configure_a_channel_through_the_dashboard(
    client: Client, saleor: FakeSaleor, installation: Any
) -> None:
    token = saleor.dashboard_token()
    response = api(client, saleor, token, channel_body())
    assert response.status_code == 200, response.content
    [described] = response.json()["channels"]
    assert described["capture_mode"] == "manual"
    assert SECRET not in response.content.decode()
    assert "api-password-secret" not in response.content.decode()
    assert described["store_key"].endswith("42")
    stored = ChannelConfiguration.objects.get()
    assert stored.store_key == SECRET
    config = get_config(stored.config_key)
    assert (config.client_id, config.capture_mode, config.lang) == ("600000001", "manual", "en")
    with connection.cursor() as cursor:
        cursor.execute("SELECT store_key, api_password FROM cmi_saleor_channelconfiguration")
        raw = " ".join(cursor.fetchone())
    assert SECRET not in raw
    assert "api-password-secret" not in raw
    # an update without secrets keeps them
    response = api(client, saleor, token, channel_body(store_key="", api_password="", lang="ar"))
    assert response.status_code == 200
    stored.refresh_from_db()
    assert (stored.store_key, stored.api_password, stored.lang) == (
        SECRET,
        "api-password-secret",
        "ar",
    )
    listed = api(client, saleor, token).json()
    assert [c["channel"] for c in listed["channels"]] == ["default-channel"]


def test_invalid_configuration_is_refused(
    client: Client, saleor: FakeSaleor, installation: Any
) -> None:
    token = saleor.dashboard_token()
    response = api(client, saleor, token, channel_body(client_id="not valid!"))
    assert response.status_code == 400
    response = api(client, saleor, token, channel_body(store_key=""))
    assert response.status_code == 400
    assert not ChannelConfiguration.objects.exists()


@pytest.mark.parametrize(
    "claims",
    [
        {"app": "QXBwOjk5"},
        {"permissions": ["MANAGE_ORDERS"]},
        {"exp": 1},
    ],
)
def test_tokens_for_others_are_refused(
    client: Client, saleor: FakeSaleor, installation: Any, claims: dict[str, Any]
) -> None:
    response = api(client, saleor, saleor.dashboard_token(**claims), channel_body())
    assert response.status_code == 401
    assert not ChannelConfiguration.objects.exists()


def test_token_signed_by_another_key_is_refused(
    client: Client, saleor: FakeSaleor, installation: Any
) -> None:
    real_key = saleor.key
    saleor.key = _key(99)
    forged = saleor.dashboard_token()
    saleor.key = real_key
    assert api(client, saleor, forged, channel_body()).status_code == 401
    assert api(client, saleor, "", channel_body()).status_code == 401
    assert not ChannelConfiguration.objects.exists()


def test_unknown_saleor_is_refused(client: Client, saleor: FakeSaleor, installation: Any) -> None:
    response = client.get(
        "/app/api/configuration",
        HTTP_AUTHORIZATION_BEARER=saleor.dashboard_token(),
        HTTP_SALEOR_API_URL="https://evil.example.com/graphql/",
    )
    assert response.status_code == 403


def test_configuration_page_can_be_framed_by_the_dashboard(client: Client) -> None:
    response = client.get("/app")
    assert response.status_code == 200
    assert "X-Frame-Options" not in response
    assert b"handshake" in response.content


def test_django_admin_edits_channels_without_showing_secrets(
    client: Client, installation: Any, channel: Any
) -> None:
    admin = User.objects.create_superuser("admin", "admin@example.ma", "pw")
    client.force_login(admin)
    page = client.get(f"/admin/cmi_saleor/channelconfiguration/{channel.pk}/change/")
    assert page.status_code == 200
    assert DEFAULT_MERCHANT.store_key not in page.content.decode()
    form = {
        "installation": installation.pk,
        "channel": "default-channel",
        "enabled": "on",
        "client_id": "600000001",
        "store_key": "",
        "api_username": "",
        "api_password": "",
        "capture_mode": "manual",
        "environment": "test",
        "base_url": "",
        "lang": "fr",
    }
    response = client.post(f"/admin/cmi_saleor/channelconfiguration/{channel.pk}/change/", form)
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.capture_mode == "manual"
    assert channel.store_key == DEFAULT_MERCHANT.store_key
    url = f"/admin/cmi_saleor/saleorinstallation/{installation.pk}/change/"
    installation_page = client.get(url)
    assert installation_page.status_code == 200
    assert installation.token not in installation_page.content.decode()


def test_language_choices_are_the_cores() -> None:
    """One list of CMI's page languages for Saleor and Wagtail (cmi_core.codes)."""
    from cmi_core.codes import LANGUAGE_CHOICES, LANGUAGES

    field = ChannelConfiguration._meta.get_field("lang")
    assert list(field.choices) == list(LANGUAGE_CHOICES)
    assert [code for code, _ in field.choices] == list(LANGUAGES)
