"""The app's secrets at rest across a key rotation (issue #11, item 5).

A channel's store key and the app token are encrypted with a key derived from
``SECRET_KEY`` here (``CMI_ENCRYPTION_KEY`` unset, as in the example app). After a
rotation without fallback the payment webhook answers a failure (never a 500) and logs
which setting to fix, without the secret; with ``SECRET_KEY_FALLBACKS`` payments go on;
``cmi_rotate_secrets`` re-encrypts the app's every secret, after which the old key can go.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from cmi_django.models import Payment
from cmi_saleor.models import SaleorInstallation
from django.core.management import call_command
from django.db import connection
from django.test import Client

from cmi_core.sandbox import DEFAULT_MERCHANT
from tests.adapters.saleor.conftest import register, send
from tests.adapters.saleor.standin import FakeSaleor, new_transaction, session_payload
from tests.adapters.saleor.test_configuration import channel_body

pytestmark = pytest.mark.django_db

INIT = "TRANSACTION_INITIALIZE_SESSION"
RETURN_URL = "https://shop.example.ma/return"


def initialize(client: Client, saleor: FakeSaleor) -> dict[str, Any]:
    payload = session_payload(INIT, new_transaction(), data={"returnUrl": RETURN_URL})
    response = send(client, saleor, INIT, payload)
    assert response.status_code == 200
    return dict(response.json())


def raw(table: str, column: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} ORDER BY id")  # noqa: S608 - test constants
        return [row[0] for row in cursor.fetchall()]


def test_a_wrong_key_fails_the_payment_cleanly(
    client: Client, saleor: FakeSaleor, channel: Any, settings: Any, caplog: Any
) -> None:
    settings.SECRET_KEY = "a-new-secret-key-nobody-told-the-app-about"
    with caplog.at_level(logging.INFO):
        answer = initialize(client, saleor)
    assert answer["result"] == "CHARGE_FAILURE"
    assert answer["message"] == "CMI is misconfigured for this channel"
    assert not Payment.objects.exists()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "SECRET_KEY_FALLBACKS" in logged
    assert DEFAULT_MERCHANT.store_key not in logged
    assert saleor.token not in logged
    # The Dashboard's API says so too (never a 500, never the data).
    response = client.get(
        "/app/api/configuration",
        HTTP_AUTHORIZATION_BEARER=saleor.dashboard_token(),
        HTTP_SALEOR_API_URL=saleor.api_url,
    )
    assert response.status_code == 503
    assert "SECRET_KEY" in response.json()["error"]


def test_fallback_keys_then_rotation(
    client: Client, saleor: FakeSaleor, channel: Any, settings: Any
) -> None:
    old_key = settings.SECRET_KEY
    before = raw("cmi_saleor_channelconfiguration", "store_key")
    settings.SECRET_KEY = "the-2026-secret-key"
    settings.SECRET_KEY_FALLBACKS = [old_key]
    assert initialize(client, saleor)["result"] == "CHARGE_ACTION_REQUIRED"

    out = io.StringIO()
    call_command("cmi_rotate_secrets", stdout=out, stderr=io.StringIO())
    report = out.getvalue()
    for label in (
        "cmi_saleor.SaleorInstallation.token: 1 value(s), 1 re-encrypted",
        "cmi_saleor.ChannelConfiguration.store_key: 1 value(s), 1 re-encrypted",
        "cmi_saleor.ChannelConfiguration.api_password: 0 value(s)",
    ):
        assert label in report
    assert raw("cmi_saleor_channelconfiguration", "store_key") != before

    settings.SECRET_KEY_FALLBACKS = []  # the previous key is no longer needed
    assert initialize(client, saleor)["result"] == "CHARGE_ACTION_REQUIRED"
    assert SaleorInstallation.objects.get().token == saleor.token


def test_registering_again_repairs_a_lost_key(
    client: Client, saleor: FakeSaleor, installation: Any, settings: Any
) -> None:
    """The app token saved under a lost key: Saleor's install call stores a new one."""
    settings.SECRET_KEY = "a-new-secret-key-after-losing-the-old-one"
    assert register(client, saleor).status_code == 200
    assert SaleorInstallation.objects.get().token == saleor.token


def test_dashboard_post_under_a_wrong_key_saves_nothing(
    client: Client, saleor: FakeSaleor, channel: Any, settings: Any
) -> None:
    from cmi_saleor.models import ChannelConfiguration

    settings.CMI_ENCRYPTION_KEY = "not the key the secrets were saved with"
    response = client.post(
        "/app/api/configuration",
        data=json.dumps(channel_body(channel="other")),
        content_type="application/json",
        HTTP_AUTHORIZATION_BEARER=saleor.dashboard_token(),
        HTTP_SALEOR_API_URL=saleor.api_url,
    )
    assert response.status_code == 503
    assert "CMI_ENCRYPTION_KEY_FALLBACKS" in response.json()["error"]
    assert list(ChannelConfiguration.objects.values_list("channel", flat=True)) == [
        "default-channel"
    ]


def test_django_admin_under_a_wrong_key_asks_for_the_secret_again(
    client: Client, installation: Any, channel: Any, settings: Any
) -> None:
    from cmi_saleor.models import ChannelConfiguration
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("admin", "admin@example.ma", "pw"))
    settings.CMI_ENCRYPTION_KEY = "a-key-the-secrets-were-not-saved-with"
    change = f"/admin/cmi_saleor/channelconfiguration/{channel.pk}/change/"
    for url in (
        "/admin/cmi_saleor/channelconfiguration/",
        change,
        "/admin/cmi_saleor/saleorinstallation/",
        f"/admin/cmi_saleor/saleorinstallation/{installation.pk}/change/",
    ):
        page = client.get(url)
        assert page.status_code == 200, url
    assert "cannot be decrypted with the current CMI_ENCRYPTION_KEY" in (
        client.get(change).content.decode()
    )
    form = {
        "installation": installation.pk,
        "channel": "default-channel",
        "enabled": "on",
        "client_id": "600000001",
        "store_key": "",
        "api_username": "",
        "api_password": "",
        "capture_mode": "auto",
        "environment": "test",
        "base_url": "",
        "lang": "fr",
    }
    refused = client.post(change, form)
    assert refused.status_code == 200  # the form again, asking for the store key
    assert "enter it again" in refused.content.decode()
    assert client.post(change, {**form, "store_key": "NEW-STORE-KEY-2026"}).status_code == 302
    assert ChannelConfiguration.objects.get().store_key == "NEW-STORE-KEY-2026"
