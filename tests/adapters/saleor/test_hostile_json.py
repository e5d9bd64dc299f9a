"""Every JSON endpoint answers 4xx to any body, and nothing changes (issue #11, item 4).

``json.loads`` raises ``RecursionError`` (not ``ValueError``) on deeply nested JSON; the
install call, the signed webhooks and the Dashboard's API all answered 500 with a
traceback to 100,000 ``[``. Here every endpoint gets a list of nasty bodies and
hypothesis' JSON, and must answer below 500 without changing any row; hostile answers
from Saleor itself (GraphQL, JWKS) and hostile JWS headers are refused the same way.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cmi_django.models import Payment
from cmi_saleor.models import ChannelConfiguration, SaleorInstallation, TransactionMap
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.adapters.saleor.conftest import send
from tests.adapters.saleor.standin import (
    FakeSaleor,
    action_payload,
    new_transaction,
    session_payload,
)

pytestmark = pytest.mark.django_db

EVENTS = (
    "PAYMENT_GATEWAY_INITIALIZE_SESSION",
    "TRANSACTION_INITIALIZE_SESSION",
    "TRANSACTION_PROCESS_SESSION",
    "TRANSACTION_CHARGE_REQUESTED",
    "TRANSACTION_REFUND_REQUESTED",
    "TRANSACTION_CANCELATION_REQUESTED",
)

NASTY: list[bytes] = [
    b"[" * 100_000,
    b"{" * 100_000,
    b'{"a":' * 100_000,
    b"[" * 1_000,
    b"[" * 1_000 + b"]" * 1_000,  # valid JSON, deeper than the parser's stack
    b"[" * 500 + b"]" * 500,  # valid JSON the parser reads: refused by the depth limit
    b'{"auth_token": ' + b"[" * 300 + b"]" * 300 + b', "channel": "x", "recipient": {}}',
    b"1" * 10_000,  # longer than int() converts
    b"1e999999",
    b'{"auth_token": 1e999, "channel": 1e999}',
    b"NaN",
    b'{"auth_token": NaN, "channel": Infinity, "amount": -Infinity}',
    b'{"auth_token": "\xff\xfe", "channel": "\xc3("}',  # invalid UTF-8
    b"\xff\xfe\x00",
    b'\xef\xbb\xbf{"auth_token": "x", "channel": "default-channel"}',  # BOM
    b"",
    b" ",
    b"null",
    b"true",
    b"0",
    b'"a string"',
    b"[]",
    b'[{"auth_token": "x", "channel": "default-channel"}]',
    b'{"auth_token": [], "channel": []}',
    b'{"auth_token": {}, "channel": {}, "recipient": []}',
    b'{"auth_token": 5, "channel": 5, "recipient": 5}',
    b'{"auth_token": null, "channel": null, "recipient": null}',
    b'{"auth_token": "\\ud800", "channel": "\\ud800", "recipient": {"id": "\\ud800"}}',
    b'{"auth_token": "\\u0000", "channel": "\\u0000"}',
    b'{"auth_token": "' + b"x" * 200_000 + b'"}',
    b"\x00" * 64,
]


def snapshot() -> list[Any]:
    """Every row the endpoints could change."""
    return [
        list(
            SaleorInstallation.objects.order_by("pk").values_list(
                "pk", "saleor_api_url", "app_id", "jwks", "jwks_fetched_at", "updated"
            )
        ),
        [
            (c.pk, c.channel, c.enabled, c.client_id, c.store_key, c.api_password, c.updated)
            for c in ChannelConfiguration.objects.order_by("pk")
        ],
        list(Payment.objects.order_by("pk").values_list("pk", "state", "updated_at")),
        TransactionMap.objects.count(),
        [i.token for i in SaleorInstallation.objects.order_by("pk")],
    ]


def post_register(client: Client, saleor: FakeSaleor, body: bytes) -> Any:
    return client.post(
        "/api/register",
        data=body,
        content_type="application/json",
        HTTP_SALEOR_API_URL=saleor.api_url,
    )


def post_config(client: Client, saleor: FakeSaleor, body: bytes) -> Any:
    return client.post(
        "/app/api/configuration",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION_BEARER=saleor.dashboard_token(),
        HTTP_SALEOR_API_URL=saleor.api_url,
    )


def post_webhooks(client: Client, saleor: FakeSaleor, body: bytes) -> list[Any]:
    return [send(client, saleor, event, None, body=body, check=False) for event in EVENTS]


def all_endpoints(client: Client, saleor: FakeSaleor, body: bytes) -> list[Any]:
    return [
        post_register(client, saleor, body),
        post_config(client, saleor, body),
        *post_webhooks(client, saleor, body),
    ]


@pytest.mark.parametrize("body", NASTY, ids=range(len(NASTY)))
def test_nasty_bodies_are_refused_by_every_json_endpoint(
    client: Client, saleor: FakeSaleor, channel: Any, body: bytes
) -> None:
    before = snapshot()
    for response in all_endpoints(client, saleor, body):
        assert 400 <= response.status_code < 500, (response.status_code, response.content[:200])
        assert "Traceback" not in response.content.decode(errors="replace")
    assert snapshot() == before


def test_register_refuses_deep_json_before_calling_saleor(
    client: Client, saleor: FakeSaleor, db: None
) -> None:
    """The unauthenticated install call of the issue: 4xx, and Saleor is never asked."""
    response = post_register(client, saleor, b"[" * 100_000)  # the body
    assert response.status_code == 413  # over 64 KiB: refused unread
    response = post_register(client, saleor, b"[" * 50_000)
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["message"]
    assert saleor.calls == []
    assert not SaleorInstallation.objects.exists()


def test_too_large_bodies_are_413(client: Client, saleor: FakeSaleor, channel: Any) -> None:
    before = snapshot()
    big = json.dumps({"auth_token": "x" * (2 * 1024 * 1024), "channel": "c"}).encode()
    assert post_register(client, saleor, big).status_code == 413
    assert post_config(client, saleor, big).status_code == 413
    assert {r.status_code for r in post_webhooks(client, saleor, big)} == {413}
    assert snapshot() == before


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["auth_token", "channel", "recipient", "action", "data", "x"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@hsettings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=JSON_VALUES, raw=st.binary(max_size=64))
def test_fuzz_every_json_endpoint(
    client: Client, saleor: FakeSaleor, channel: Any, value: Any, raw: bytes
) -> None:
    before = snapshot()
    for body in (json.dumps(value).encode(), raw):
        for response in all_endpoints(client, saleor, body):
            assert response.status_code < 500, (response.status_code, body[:100])
    assert snapshot() == before


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a payload (each dict entry and list item, at every depth)."""
    found = [path] if path else []
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_leaves(child, (*path, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_leaves(child, (*path, index)))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    copy = json.loads(json.dumps(value))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


WRONG = [
    None,
    [],
    {},
    7,
    -1e308,
    "\ud800",
    "x" * 200,
    "x" * 5000,
    [[[[["deep"]]]]],
    True,
    "https://[",  # urlsplit raises ValueError
    "http://shop.example.ma:99999999/",
]


@pytest.mark.parametrize("event", EVENTS)
def test_wrong_types_in_every_field_of_signed_webhooks(
    client: Client, saleor: FakeSaleor, channel: Any, event: str
) -> None:
    """A signed payload with any field of the wrong type: an answer, never a 500."""
    transaction = new_transaction()
    if event.endswith("_REQUESTED"):
        kind = event.split("_")[1].replace("CANCELATION", "CANCEL")
        payload = action_payload(transaction, kind, "10.00")
    else:
        payload = session_payload(
            event, transaction, data={"returnUrl": "https://shop.example.ma/return"}
        )
    for path in _leaves(payload):
        for wrong in WRONG:
            body = json.dumps(_replace(payload, path, wrong)).encode()
            response = send(client, saleor, event, None, body=body, check=False)
            assert response.status_code < 500, (path, wrong)
            if response.status_code == 200:
                assert isinstance(response.json(), dict)


# -- hostile signatures and tokens -------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_deeply_nested_jws_headers_are_401(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    before = snapshot()
    body = json.dumps(session_payload("TRANSACTION_PROCESS_SESSION", new_transaction())).encode()
    for header in (b"[" * 100_000, b"[" * 500 + b"]" * 500, b'{"kid": ' + b"[" * 5000 + b"}"):
        signature = f"{_b64(header)}..{_b64(b'x' * 256)}"
        response = send(
            client,
            saleor,
            "TRANSACTION_PROCESS_SESSION",
            None,
            body=body,
            check=False,
            **{"Saleor-Signature": signature},
        )
        assert response.status_code == 401
        token = f"{_b64(header)}.{_b64(b'{}')}.{_b64(b'x' * 256)}"
        response = client.get(
            "/app/api/configuration",
            HTTP_AUTHORIZATION_BEARER=token,
            HTTP_SALEOR_API_URL=saleor.api_url,
        )
        assert response.status_code == 401
    assert snapshot() == before


def test_signed_dashboard_token_with_hostile_claims_is_401(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    """Claims nested deeply, or permissions of the wrong type, signed with Saleor's key."""
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)  # only to build the token (json.dumps recurses)
    try:
        tokens = [saleor.dashboard_token(extra=deep)]
    finally:
        sys.setrecursionlimit(limit)
    tokens += [saleor.dashboard_token(permissions=7), saleor.dashboard_token(permissions=None)]
    for token in tokens:
        response = client.get(
            "/app/api/configuration",
            HTTP_AUTHORIZATION_BEARER=token,
            HTTP_SALEOR_API_URL=saleor.api_url,
        )
        assert response.status_code == 401, response.content[:200]


# -- a hostile Saleor answering the app's calls --------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [b"[" * 100_000, b'{"data": ' + b"[" * 500 + b"]" * 500 + b"}", b"NaN", b"\xff", b"[]"],
    ids=["deep-invalid", "deep-valid", "nan", "not-utf8", "array"],
)
@pytest.mark.parametrize("where", ["graphql", "jwks"])
def test_hostile_saleor_answers_are_a_clear_error(
    client: Client, http: Any, db: None, answer: bytes, where: str
) -> None:
    saleor = FakeSaleor()
    origin = saleor.api_url.split("/graphql/")[0]
    if where == "graphql":
        http.add(http.POST, saleor.api_url, body=answer, content_type="application/json")
        http.add(http.GET, f"{origin}/.well-known/jwks.json", json=saleor.jwks())
    else:
        saleor.activate(http)
        http.replace(http.GET, f"{origin}/.well-known/jwks.json", body=answer)
    response = post_register(client, saleor, json.dumps({"auth_token": saleor.token}).encode())
    assert response.status_code == 400
    error = response.json()["error"]  # Saleor shows error.message to its operator
    assert error["code"] == "SALEOR_UNREACHABLE"
    assert error["message"].startswith("the CMI app could not confirm the token with the Saleor")
    assert saleor.token not in error["message"]
    assert not SaleorInstallation.objects.exists()


def test_graphql_execute_raises_saleor_api_error_on_deep_json(http: Any) -> None:
    from cmi_saleor.graphql import SaleorAPIError, execute

    http.add(http.POST, "https://saleor.example.com/graphql/", body=b"[" * 100_000)
    with pytest.raises(SaleorAPIError, match="unusable"):
        execute("https://saleor.example.com/graphql/", "token", "query { app { id } }")


@pytest.mark.parametrize(
    "api_url",
    [
        "https://saleor.example.com/graphql/\x00",
        "\x00",
        "https://" + "a" * 5000,
        "héllo",
        "",
        "https://[",
        "https://saleor.example.com:99999999/graphql/",
    ],
    ids=["nul-suffix", "nul", "long", "latin1", "empty", "bad-ipv6", "bad-port"],
)
def test_hostile_saleor_api_url_headers_are_refused(
    client: Client, saleor: FakeSaleor, channel: Any, api_url: str
) -> None:
    before = snapshot()
    body = json.dumps(session_payload("TRANSACTION_PROCESS_SESSION", new_transaction())).encode()
    responses_ = [
        send(
            client,
            saleor,
            "TRANSACTION_PROCESS_SESSION",
            None,
            body=body,
            check=False,
            **{"Saleor-Api-Url": api_url},
        ),
        client.post(
            "/api/register",
            data=json.dumps({"auth_token": saleor.token}),
            content_type="application/json",
            HTTP_SALEOR_API_URL=api_url,
        ),
        client.get(
            "/app/api/configuration",
            HTTP_AUTHORIZATION_BEARER=saleor.dashboard_token(),
            HTTP_SALEOR_API_URL=api_url,
        ),
        client.get("/app", {"saleorApiUrl": api_url}),
    ]
    assert [r.status_code >= 500 for r in responses_] == [False] * 4
    assert snapshot() == before
