"""Fixtures: the Saleor stand-in (behind ``responses``), an installed app, a channel."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import responses
from django.test import Client

from cmi_core.sandbox import DEFAULT_MERCHANT
from tests.adapters.saleor.standin import JSON_SCHEMAS, FakeSaleor, response_errors

LOCAL = re.compile(r"http://(127\.0\.0\.1|localhost)(:\d+)?/")


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    """Every ``requests`` call of the process is mocked, except to local servers."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(LOCAL)
        yield mock


@pytest.fixture
def saleor(http: responses.RequestsMock) -> FakeSaleor:
    fake = FakeSaleor()
    fake.activate(http)
    return fake


def register(client: Client, saleor: FakeSaleor, token: str | None = None) -> Any:
    return client.post(
        "/api/register",
        data=json.dumps({"auth_token": token or saleor.token}),
        content_type="application/json",
        HTTP_SALEOR_API_URL=saleor.api_url,
    )


@pytest.fixture
def installation(db: None, client: Client, saleor: FakeSaleor) -> Any:
    from cmi_saleor.models import SaleorInstallation

    assert register(client, saleor).status_code == 200
    return SaleorInstallation.objects.get(saleor_api_url=saleor.api_url)


@pytest.fixture
def channel(installation: Any) -> Any:
    from cmi_saleor.models import ChannelConfiguration

    return ChannelConfiguration.objects.create(
        installation=installation,
        channel="default-channel",
        client_id=DEFAULT_MERCHANT.client_id,
        store_key=DEFAULT_MERCHANT.store_key,
        capture_mode="auto",
        environment="test",
        lang="fr",
    )


def send(
    client: Client,
    saleor: FakeSaleor,
    event: str,
    payload: Any,
    *,
    check: bool = True,
    body: bytes | None = None,
    **headers: str,
) -> Any:
    """POST a webhook as Saleor does; a 200 answer is checked against Saleor's JSON Schema."""
    raw = body if body is not None else json.dumps(payload).encode()
    signed = saleor.headers(event, raw, **headers)
    slug = event.lower().replace("_", "-")
    response = client.post(
        f"/api/webhooks/{slug}",
        data=raw,
        content_type="application/json",
        **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in signed.items()},
    )
    if check and response.status_code == 200 and event in JSON_SCHEMAS:
        errors = response_errors(event, response.json())
        assert not errors, f"{event} answer refused by Saleor's JSON Schema: {errors}"
        transaction = payload.get("transaction") if isinstance(payload, dict) else None
        transaction_id = transaction.get("id") if isinstance(transaction, dict) else None
        if isinstance(transaction_id, str) and isinstance(response.json(), dict):
            request = None  # the *_REQUEST event Saleor made before a charge/refund/cancel
            events = transaction.get("events") if isinstance(transaction, dict) else None
            if (
                isinstance(events, list)
                and events
                and str(events[-1].get("type")).endswith("_REQUEST")
            ):
                amount = Decimal(str(payload["action"]["amount"]))
                request = (str(events[-1]["type"]), amount)
            saleor.store(transaction_id, response.json(), request)  # Saleor keeps the answer
    return response


@pytest.fixture(autouse=True)
def _nothing_remembered() -> Iterator[None]:
    """Each test starts with an empty webhook cache (:mod:`cmi_saleor.cache`)."""
    from cmi_saleor import cache

    cache.forget()
    yield
    cache.forget()
