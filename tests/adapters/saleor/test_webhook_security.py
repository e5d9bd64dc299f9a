"""Every webhook is refused, with no effect, unless Saleor really sent it to this app."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest
from cmi_django.models import Payment
from cmi_saleor.models import SaleorInstallation
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.test import Client
from django.utils import timezone
from jwt.utils import base64url_encode

from tests.adapters.saleor.conftest import send
from tests.adapters.saleor.standin import FakeSaleor, _key, new_transaction, session_payload

pytestmark = pytest.mark.django_db

EVENT = "TRANSACTION_INITIALIZE_SESSION"


def initialize(**data: Any) -> dict[str, Any]:
    return session_payload(
        EVENT, new_transaction(), data={"returnUrl": "https://shop.example.ma/return"}
    )


def test_a_signed_webhook_is_answered(client: Client, saleor: FakeSaleor, channel: Any) -> None:
    response = send(client, saleor, EVENT, initialize())
    assert response.status_code == 200
    assert response.json()["result"] == "CHARGE_ACTION_REQUIRED"
    assert Payment.objects.count() == 1


def test_tampered_body_is_refused(client: Client, saleor: FakeSaleor, channel: Any) -> None:
    payload = initialize()
    body = json.dumps(payload).encode()
    signature = saleor.sign(body)
    tampered = body.replace(b"120.50", b"1.50")
    response = send(client, saleor, EVENT, None, body=tampered, **{"Saleor-Signature": signature})
    assert response.status_code == 401
    assert not Payment.objects.exists()


def test_signature_by_another_key_is_refused(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    body = json.dumps(initialize()).encode()
    forged = saleor.sign(body, key=_key(99))
    response = send(client, saleor, EVENT, None, body=body, **{"Saleor-Signature": forged})
    assert response.status_code == 401
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "garbage",
        "a.b.c",
        "eyJhbGciOiJub25lIn0..",
        "W10.a.b",  # a header that is a JSON array
        "gA.a.b",  # not UTF-8
        "e30.a.b",  # {}: no kid, no alg
        "eyJraWQiOjF9.a.b",  # {"kid": 1}
        "\u00e9.a.b",
        "!!!.!!!.!!!",
        base64url_encode(b"[" * 2000).decode() + ".a.b",  # too deep for json: RecursionError
    ],
)
@pytest.mark.parametrize("remembered", [False, True])
def test_malformed_signatures_are_refused(
    client: Client, saleor: FakeSaleor, channel: Any, signature: str, remembered: bool
) -> None:
    if remembered:  # a genuine webhook first: the installation is in the webhook cache
        assert send(client, saleor, EVENT, initialize()).status_code == 200
    count = Payment.objects.count()
    response = send(client, saleor, EVENT, initialize(), **{"Saleor-Signature": signature})
    assert response.status_code == 401
    assert Payment.objects.count() == count


def test_hmac_signature_with_the_public_key_is_refused(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    """Algorithm confusion: HS256 keyed with the public JWK must not pass (RS256 pinned)."""
    body = json.dumps(initialize()).encode()
    header = base64url_encode(
        json.dumps({"alg": "HS256", "b64": False, "crit": ["b64"], "kid": saleor.kid}).encode()
    )
    for secret in (
        json.dumps(saleor.jwks()["keys"][0]).encode(),
        saleor.key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
    ):
        mac = hmac.new(secret, header + b"." + body, hashlib.sha256).digest()
        forged = (header + b".." + base64url_encode(mac)).decode()
        response = send(client, saleor, EVENT, None, body=body, **{"Saleor-Signature": forged})
        assert response.status_code == 401
    assert not Payment.objects.exists()


def test_unknown_api_url_is_refused(client: Client, saleor: FakeSaleor, channel: Any) -> None:
    response = send(
        client,
        saleor,
        EVENT,
        initialize(),
        **{"Saleor-Api-Url": "https://evil.example.com/graphql/"},
    )
    assert response.status_code == 403
    assert not Payment.objects.exists()


def test_event_header_must_match_the_endpoint(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    response = send(
        client, saleor, EVENT, initialize(), **{"Saleor-Event": "transaction_process_session"}
    )
    assert response.status_code == 403
    assert not Payment.objects.exists()


def test_recipient_must_be_this_app(client: Client, saleor: FakeSaleor, channel: Any) -> None:
    payload = initialize()
    payload["recipient"] = {"id": "QXBwOjk5"}
    assert send(client, saleor, EVENT, payload).status_code == 403
    payload.pop("recipient")
    assert send(client, saleor, EVENT, payload).status_code == 403
    assert not Payment.objects.exists()


def test_webhooks_are_post_only(client: Client, channel: Any) -> None:
    response = client.get("/api/webhooks/transaction-initialize-session")
    assert response.status_code == 405
    assert client.post("/api/webhooks/no-such-event").status_code == 404


def fetched_a_while_ago(seconds: float = 3600) -> None:
    """Time passes: the stored JWKS was fetched ``seconds`` ago (a rotation comes later)."""
    SaleorInstallation.objects.update(jwks_fetched_at=timezone.now() - timedelta(seconds=seconds))


def test_key_rotation_refetches_the_jwks_once(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    fetched_a_while_ago()
    fetches = saleor.jwks_fetches
    saleor.rotate()
    response = send(client, saleor, EVENT, initialize())
    assert response.status_code == 200
    assert saleor.jwks_fetches == fetches + 1
    assert SaleorInstallation.objects.get().jwks == saleor.jwks()
    assert send(client, saleor, EVENT, initialize()).status_code == 200
    assert saleor.jwks_fetches == fetches + 1  # the new key is stored now


def test_bad_signatures_with_a_known_key_do_not_refetch_every_time(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    """Just after registration the JWKS is fresh: a forgery under its kid costs no fetch."""
    fetches = saleor.jwks_fetches
    body = json.dumps(initialize()).encode()
    for _ in range(3):
        forged = saleor.sign(body, key=_key(99))
        assert (
            send(client, saleor, EVENT, None, body=body, **{"Saleor-Signature": forged}).status_code
            == 401
        )
    assert saleor.jwks_fetches == fetches


def test_stale_jwks_is_refetched_once_then_refused(
    client: Client, saleor: FakeSaleor, channel: Any, settings: Any
) -> None:
    settings.CMI_SALEOR_JWKS_REFETCH_INTERVAL = 0
    fetches = saleor.jwks_fetches
    body = json.dumps(initialize()).encode()
    forged = saleor.sign(body, key=_key(99))
    assert (
        send(client, saleor, EVENT, None, body=body, **{"Saleor-Signature": forged}).status_code
        == 401
    )
    assert saleor.jwks_fetches == fetches + 1


def test_parsed_keys_are_cached_by_content_and_rotation_still_works(
    client: Client, saleor: FakeSaleor, channel: Any, settings: Any
) -> None:
    from cmi_saleor import security

    assert send(client, saleor, EVENT, initialize()).status_code == 200
    stored = SaleorInstallation.objects.get().jwks
    assert security._keyset(stored) is security._keyset(json.loads(json.dumps(stored)))
    old_key, old_kid = saleor.key, saleor.kid
    fetched_a_while_ago()
    fetches = saleor.jwks_fetches
    saleor.rotate()
    assert send(client, saleor, EVENT, initialize()).status_code == 200  # one re-fetch
    assert saleor.jwks_fetches == fetches + 1
    assert security._keyset(SaleorInstallation.objects.get().jwks) is not security._keyset(stored)
    # The old key set is still parsed in the cache, but the stored JWKS no longer has its
    # key: a body signed with it is refused (the JWKS was just fetched: no re-fetch)...
    settings.CMI_SALEOR_JWKS_REFETCH_INTERVAL = 3600
    body = json.dumps(initialize()).encode()
    stale = saleor.sign(body, key=old_key, kid=old_kid)
    response = send(client, saleor, EVENT, None, body=body, **{"Saleor-Signature": stale})
    assert response.status_code == 401
    assert saleor.jwks_fetches == fetches + 1
    # ... and still refused after the one re-fetch an unknown kid may cost later on.
    fetched_a_while_ago()
    response = send(client, saleor, EVENT, None, body=body, **{"Saleor-Signature": stale})
    assert response.status_code == 401
    assert saleor.jwks_fetches == fetches + 2


def test_a_webhook_does_not_decrypt_the_app_token(
    client: Client, saleor: FakeSaleor, channel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cmi_django import crypto

    calls: list[str] = []
    real = crypto.decrypt
    monkeypatch.setattr(crypto, "decrypt", lambda token: calls.append(token) or real(token))
    response = send(
        client,
        saleor,
        "PAYMENT_GATEWAY_INITIALIZE_SESSION",
        {
            "recipient": {"id": saleor.app_id},
            "data": None,
            "amount": 120.5,
            "sourceObject": initialize()["sourceObject"],
        },
    )
    assert response.status_code == 200
    assert calls == []
