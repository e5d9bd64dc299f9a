"""Webhooks remember the installation and the channel configuration for a few seconds.

What another worker process changes is simulated with queryset ``update()`` and raw SQL,
which send no signals, so this process's memory is not told about them.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
import responses
from cmi_django.models import Payment
from cmi_saleor import cache
from cmi_saleor.models import ChannelConfiguration, SaleorInstallation
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.adapters.saleor.conftest import send
from tests.adapters.saleor.standin import (
    JWKS_URL,
    FakeSaleor,
    checkout,
    new_transaction,
    recipient,
    session_payload,
)

pytestmark = pytest.mark.django_db

GATEWAY = "PAYMENT_GATEWAY_INITIALIZE_SESSION"
INITIALIZE = "TRANSACTION_INITIALIZE_SESSION"


def gateway(app_id: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"data": None, "amount": 120.5, "sourceObject": checkout()}
    payload["recipient"] = recipient(app_id) if app_id else recipient()
    return payload


def initialize() -> dict[str, Any]:
    return session_payload(
        INITIALIZE, new_transaction(), data={"returnUrl": "https://shop.example.ma/return"}
    )


def queries(client: Client, saleor: FakeSaleor, payload: dict[str, Any]) -> tuple[Any, int]:
    with CaptureQueriesContext(connection) as captured:
        response = send(client, saleor, GATEWAY, payload)
    return response, len(captured.captured_queries)


_monotonic = time.monotonic


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The process's clock is ``seconds`` ahead of the real one (not of an earlier call)."""
    monkeypatch.setattr(cache.time, "monotonic", lambda: _monotonic() + seconds)


def test_a_second_webhook_reads_nothing_from_the_database(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    first, count = queries(client, saleor, gateway())
    assert first.status_code == 200
    assert count == 2  # the installation, then the channel
    again, count = queries(client, saleor, gateway())
    assert again.json() == first.json()
    assert count == 0


def test_off_when_the_interval_is_zero(
    client: Client, saleor: FakeSaleor, channel: Any, settings: Any
) -> None:
    settings.CMI_SALEOR_CACHE_SECONDS = 0
    assert cache.seconds() == 0
    for _ in range(3):
        response, count = queries(client, saleor, gateway())
        assert response.status_code == 200
        assert count == 2


def test_a_change_saved_here_counts_at_once(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    assert (
        send(client, saleor, GATEWAY, gateway()).json()["data"]["capture"]["withoutActionType"]
        == "auto"
    )
    channel.capture_mode = "manual"
    channel.save()
    assert (
        send(client, saleor, GATEWAY, gateway()).json()["data"]["capture"]["withoutActionType"]
        == "manual"
    )
    channel.delete()
    assert send(client, saleor, GATEWAY, gateway()).json()["data"]["available"] is False


def test_a_change_made_by_another_process_counts_after_the_interval(
    client: Client, saleor: FakeSaleor, channel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cache.seconds() == 5
    assert send(client, saleor, GATEWAY, gateway()).json()["data"]["available"] is True
    ChannelConfiguration.objects.update(enabled=False, capture_mode="manual")
    later(monkeypatch, 4.9)
    assert send(client, saleor, GATEWAY, gateway()).json()["data"]["available"] is True
    later(monkeypatch, 5.1)
    assert send(client, saleor, GATEWAY, gateway()).json()["data"]["available"] is False


def test_an_app_id_changed_elsewhere_is_accepted_at_once(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    assert send(client, saleor, GATEWAY, gateway()).status_code == 200
    SaleorInstallation.objects.update(app_id="QXBwOjQy")  # re-installed, by another worker
    response, count = queries(client, saleor, gateway("QXBwOjQy"))
    assert response.status_code == 200
    assert count == 1  # the remembered installation failed, the stored one did not
    # The old app id is refused from now on, memory or not.
    assert send(client, saleor, GATEWAY, gateway()).status_code == 403
    assert send(client, saleor, GATEWAY, gateway("QXBwOjQy")).status_code == 200


@pytest.mark.parametrize("fetched_by", ["another worker", "this worker"])
def test_a_rotated_key_verifies_and_the_old_key_is_refused(
    client: Client, saleor: FakeSaleor, channel: Any, http: responses.RequestsMock, fetched_by: str
) -> None:
    assert send(client, saleor, GATEWAY, gateway()).status_code == 200
    old_key, old_kid = saleor.key, saleor.kid
    saleor.rotate()
    if fetched_by == "another worker":  # which met the new key first and stored the JWKS
        SaleorInstallation.objects.update(jwks=saleor.jwks())
    else:  # the stored JWKS is old enough for this worker to re-fetch it
        SaleorInstallation.objects.update(jwks_fetched_at=timezone.now() - timedelta(hours=1))
    fetches = sum(1 for call in http.calls if call.request.url == JWKS_URL)
    assert send(client, saleor, GATEWAY, gateway()).status_code == 200
    fetched = sum(1 for call in http.calls if call.request.url == JWKS_URL) - fetches
    assert fetched == (fetched_by == "this worker")
    # What this worker remembers now is the new JWKS: the old key is refused.
    body = json.dumps(gateway()).encode()
    stale = saleor.sign(body, key=old_key, kid=old_kid)
    response = send(client, saleor, GATEWAY, None, body=body, **{"Saleor-Signature": stale})
    assert response.status_code == 401


def test_unknown_api_urls_are_not_remembered(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    for number in range(50):
        url = f"https://forged-{number}.example.com/graphql/"
        response = send(client, saleor, GATEWAY, gateway(), **{"Saleor-Api-Url": url})
        assert response.status_code == 403
    assert not cache._entries


def test_secrets_are_not_in_memory(client: Client, saleor: FakeSaleor, channel: Any) -> None:
    assert send(client, saleor, GATEWAY, gateway()).status_code == 200
    remembered = [value for _, value in cache._entries.values()]
    assert {type(value) for value in remembered} == {SaleorInstallation, ChannelConfiguration}
    for value in remembered:
        assert not {"token", "store_key", "api_password"} & set(value.__dict__)


def test_an_installation_deleted_elsewhere_gets_a_clear_failure(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    assert send(client, saleor, INITIALIZE, initialize()).status_code == 200
    remembered = dict(cache._entries)
    SaleorInstallation.objects.all().delete()  # uninstalled, in another worker:
    cache._entries.update(remembered)  # this one was not told
    response = send(client, saleor, INITIALIZE, initialize())
    assert response.status_code == 200
    assert response.json()["result"] == "CHARGE_FAILURE"
    assert "not configured" in response.json()["message"]
    assert Payment.objects.count() == 1


def test_a_channel_disabled_elsewhere_takes_no_new_payment(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    assert send(client, saleor, INITIALIZE, initialize()).status_code == 200
    assert send(client, saleor, GATEWAY, gateway()).json()["data"]["available"] is True
    ChannelConfiguration.objects.update(enabled=False)  # by another worker: not told
    response = send(client, saleor, INITIALIZE, initialize())
    assert response.json()["result"] == "CHARGE_FAILURE"
    assert Payment.objects.count() == 1


def test_a_row_read_before_a_save_is_not_remembered_after_it(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    # A request's thread reads the installation; another thread saves it meanwhile.
    row, remembered, read_in = cache.installation(saleor.api_url)
    assert row is not None
    assert not remembered
    SaleorInstallation.objects.get().save()
    cache.remember_installation(row, read_in)  # the first thread, done verifying
    assert not cache._entries
    # Read after the save, it is remembered.
    row, _, read_in = cache.installation(saleor.api_url)
    assert row is not None
    cache.remember_installation(row, read_in)
    assert list(cache._entries) == [("installation", saleor.api_url)]
