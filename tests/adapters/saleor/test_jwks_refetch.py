"""Forged key ids cannot make the app fetch Saleor's JWKS once per request.

A signature naming a key id the stored JWKS lacks may re-fetch it (key rotation), but at
most once per ``CMI_SALEOR_JWKS_UNKNOWN_KID_INTERVAL`` seconds per installation, counted
from the stored ``jwks_fetched_at`` (so across workers); time passing is the stored fetch
time moved back.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest
import responses
from cmi_django.models import Payment
from cmi_saleor import security
from cmi_saleor.models import SaleorInstallation
from django.test import Client
from django.utils import timezone

from tests.adapters.saleor.conftest import send
from tests.adapters.saleor.standin import (
    JWKS_URL,
    FakeSaleor,
    _key,
    new_transaction,
    session_payload,
)

pytestmark = pytest.mark.django_db

EVENT = "TRANSACTION_INITIALIZE_SESSION"
BURST = 25


def initialize() -> dict[str, Any]:
    return session_payload(
        EVENT, new_transaction(), data={"returnUrl": "https://shop.example.ma/return"}
    )


def jwks_fetches(http: responses.RequestsMock) -> int:
    return sum(1 for call in http.calls if call.request.url == JWKS_URL)


def time_passes(seconds: float) -> None:
    """The stored JWKS (or the last attempt to fetch it) is ``seconds`` older."""
    at = SaleorInstallation.objects.get().jwks_fetched_at
    SaleorInstallation.objects.update(jwks_fetched_at=at - timedelta(seconds=seconds))


def forge(client: Client, saleor: FakeSaleor, kid: str | None = None) -> int:
    """A webhook signed by someone else's key under a random (or the given) key id."""
    body = json.dumps(initialize()).encode()
    forged = saleor.sign(body, key=_key(99), kid=kid or f"forged-{uuid.uuid4().hex}")
    response = send(client, saleor, EVENT, None, body=body, **{"Saleor-Signature": forged})
    return int(response.status_code)


def test_the_unknown_kid_interval_is_short_by_default() -> None:
    from cmi_saleor import conf

    assert conf.jwks_unknown_kid_interval() == 5
    assert conf.jwks_refetch_interval() == 60


def test_a_burst_of_forged_kids_costs_at_most_one_fetch(
    client: Client, saleor: FakeSaleor, channel: Any, http: responses.RequestsMock
) -> None:
    time_passes(3600)
    before = jwks_fetches(http)
    assert [forge(client, saleor) for _ in range(BURST)] == [401] * BURST
    assert jwks_fetches(http) == before + 1
    assert not Payment.objects.exists()
    assert SaleorInstallation.objects.get().jwks == saleor.jwks()


def test_forged_kids_right_after_registration_cost_no_fetch(
    client: Client, saleor: FakeSaleor, channel: Any, http: responses.RequestsMock
) -> None:
    before = jwks_fetches(http)
    assert [forge(client, saleor) for _ in range(BURST)] == [401] * BURST
    assert jwks_fetches(http) == before
    assert not Payment.objects.exists()


def test_one_more_fetch_once_the_interval_has_passed(
    client: Client, saleor: FakeSaleor, channel: Any, http: responses.RequestsMock, settings: Any
) -> None:
    settings.CMI_SALEOR_JWKS_UNKNOWN_KID_INTERVAL = 5
    time_passes(3600)
    before = jwks_fetches(http)
    assert forge(client, saleor) == 401
    assert jwks_fetches(http) == before + 1
    time_passes(4)  # not yet
    assert [forge(client, saleor) for _ in range(5)] == [401] * 5
    assert jwks_fetches(http) == before + 1
    time_passes(1.5)
    assert [forge(client, saleor) for _ in range(BURST)] == [401] * BURST
    assert jwks_fetches(http) == before + 2
    # The same bogus kid again and again is no different from random ones.
    time_passes(6)
    assert [forge(client, saleor, kid="same-bogus-kid") for _ in range(5)] == [401] * 5
    assert jwks_fetches(http) == before + 3
    assert not Payment.objects.exists()


def test_a_genuine_rotation_verifies_on_its_first_webhook(
    client: Client, saleor: FakeSaleor, channel: Any, http: responses.RequestsMock
) -> None:
    time_passes(3600)
    before = jwks_fetches(http)
    saleor.rotate()
    response = send(client, saleor, EVENT, initialize())
    assert response.status_code == 200
    assert jwks_fetches(http) == before + 1
    assert SaleorInstallation.objects.get().jwks == saleor.jwks()
    assert send(client, saleor, EVENT, initialize()).status_code == 200
    assert jwks_fetches(http) == before + 1
    assert Payment.objects.count() == 2


def test_a_rotation_just_after_a_forged_fetch_waits_for_the_interval(
    client: Client, saleor: FakeSaleor, channel: Any, http: responses.RequestsMock
) -> None:
    """The documented trade-off: forgeries cannot delay a rotation by more than the interval."""
    time_passes(3600)
    before = jwks_fetches(http)
    assert forge(client, saleor) == 401
    saleor.rotate()
    assert send(client, saleor, EVENT, initialize()).status_code == 401
    assert jwks_fetches(http) == before + 1
    time_passes(5)
    assert send(client, saleor, EVENT, initialize()).status_code == 200
    assert jwks_fetches(http) == before + 2


def test_concurrent_requests_fetch_once_and_share_the_fresh_jwks(
    saleor: FakeSaleor, channel: Any, http: responses.RequestsMock
) -> None:
    """Two requests that read the installation before either fetched: one fetch."""
    time_passes(3600)
    first, second = SaleorInstallation.objects.get(), SaleorInstallation.objects.get()
    before = jwks_fetches(http)
    saleor.rotate()
    body = json.dumps(initialize()).encode()
    security.verify_webhook(first, body, saleor.sign(body))
    assert jwks_fetches(http) == before + 1
    # ``second`` still holds the old JWKS and an old fetch time, but the claim in the
    # database is taken: no fetch, and the JWKS the first one stored verifies it.
    security.verify_webhook(second, body, saleor.sign(body))
    assert jwks_fetches(http) == before + 1
    assert second.jwks == saleor.jwks()


def test_concurrent_forgeries_fetch_once(
    saleor: FakeSaleor, channel: Any, http: responses.RequestsMock
) -> None:
    time_passes(3600)
    stale = [SaleorInstallation.objects.get() for _ in range(5)]
    before = jwks_fetches(http)
    body = json.dumps(initialize()).encode()
    for installation in stale:
        forged = saleor.sign(body, key=_key(99), kid=uuid.uuid4().hex)
        with pytest.raises(security.InvalidSignatureError):
            security.verify_webhook(installation, body, forged)
    assert jwks_fetches(http) == before + 1


def test_a_failing_jwks_endpoint_is_not_hammered(
    client: Client, saleor: FakeSaleor, channel: Any, http: responses.RequestsMock
) -> None:
    time_passes(3600)
    http.replace(responses.GET, JWKS_URL, status=503)
    before = jwks_fetches(http)
    assert [forge(client, saleor) for _ in range(BURST)] == [401] * BURST
    assert jwks_fetches(http) == before + 1
    stored = SaleorInstallation.objects.get()
    assert stored.jwks == saleor.jwks()  # the stored JWKS is kept
    assert timezone.now() - stored.jwks_fetched_at < timedelta(seconds=5)


def test_forged_dashboard_tokens_are_throttled_too(
    saleor: FakeSaleor, channel: Any, http: responses.RequestsMock
) -> None:
    time_passes(3600)
    before = jwks_fetches(http)
    claims = jwt.decode(saleor.dashboard_token(), options={"verify_signature": False})
    for _ in range(BURST):
        forged = jwt.encode(
            claims, _key(99), algorithm="RS256", headers={"kid": f"forged-{uuid.uuid4().hex}"}
        )
        with pytest.raises(security.InvalidSignatureError):
            security.verify_dashboard_token(SaleorInstallation.objects.get(), forged)
    assert jwks_fetches(http) == before + 1
    security.verify_dashboard_token(SaleorInstallation.objects.get(), saleor.dashboard_token())


@pytest.mark.parametrize(
    ("unknown", "known", "elapsed", "fetched"),
    [
        (0, 60, 0, True),  # 0: every unknown kid may re-fetch (the old behaviour)
        (3600, 2, 3, True),  # never longer than the known-kid interval
        (5, 60, 4, False),
        (5, 60, 5, True),
    ],
)
def test_the_intervals_are_settings(
    client: Client,
    saleor: FakeSaleor,
    channel: Any,
    http: responses.RequestsMock,
    *,
    settings: Any,
    unknown: float,
    known: float,
    elapsed: float,
    fetched: bool,
) -> None:
    settings.CMI_SALEOR_JWKS_UNKNOWN_KID_INTERVAL = unknown
    settings.CMI_SALEOR_JWKS_REFETCH_INTERVAL = known
    time_passes(elapsed)
    before = jwks_fetches(http)
    assert forge(client, saleor) == 401
    assert jwks_fetches(http) == before + int(fetched)
