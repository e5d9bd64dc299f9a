"""Manifest and registration: what Saleor reads and calls when it installs the app."""

from __future__ import annotations

import importlib.metadata
import json
from typing import Any

import pytest
from cmi_saleor.graphql import SUBSCRIPTIONS
from cmi_saleor.models import SaleorInstallation
from django.db import connection
from django.test import Client

from tests.adapters.saleor.conftest import register, send
from tests.adapters.saleor.standin import (
    FakeSaleor,
    graphql_errors,
    new_transaction,
    session_payload,
)

pytestmark = pytest.mark.django_db


def test_manifest_lists_every_payment_webhook_with_valid_queries(client: Client) -> None:
    response = client.get("/api/manifest")
    assert response.status_code == 200
    manifest = response.json()
    assert manifest["id"] == "ma.cmi.payments"
    assert manifest["permissions"] == ["HANDLE_PAYMENTS"]
    assert manifest["tokenTargetUrl"] == "https://cmi-app.example.ma/api/register"
    assert manifest["appUrl"] == "https://cmi-app.example.ma/app"
    assert manifest["requiredSaleorVersion"].startswith(">=")
    assert manifest["version"] == importlib.metadata.version("cmi-payments")
    assert manifest["name"]
    events = [hook["syncEvents"][0] for hook in manifest["webhooks"]]
    assert sorted(events) == sorted(SUBSCRIPTIONS)
    for hook in manifest["webhooks"]:
        assert hook["isActive"] is True
        assert hook["targetUrl"].startswith("https://cmi-app.example.ma/api/webhooks/")
        assert graphql_errors(hook["query"]) == [], hook["name"]


@pytest.mark.parametrize(
    "path",
    ["/api/manifest", "/api/manifest/", "/health", "/health/", "/app", "/app/"],
)
def test_get_paths_never_redirect(client: Client, path: str) -> None:
    assert client.get(path).status_code == 200


def test_every_manifest_url_answers_without_redirect(client: Client, saleor: FakeSaleor) -> None:
    manifest = client.get("/api/manifest").json()
    urls = [manifest["tokenTargetUrl"]] + [h["targetUrl"] for h in manifest["webhooks"]]
    for url in urls:
        path = url.removeprefix("https://cmi-app.example.ma")
        status = client.post(path, data=b"{}", content_type="application/json").status_code
        assert status not in (301, 302, 307, 308), path
        assert status in (400, 403), path


def test_register_stores_token_encrypted_app_id_and_jwks(
    client: Client, saleor: FakeSaleor
) -> None:
    response = register(client, saleor)
    assert response.status_code == 200, response.content
    stored = SaleorInstallation.objects.get()
    assert stored.app_id == saleor.app_id
    assert stored.token == saleor.token
    assert stored.jwks == saleor.jwks()
    assert [c.operation for c in saleor.calls] == ["CmiAppId"]
    assert saleor.calls[0].token == saleor.token
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM cmi_saleor_saleorinstallation")
        (raw,) = cursor.fetchone()
    assert saleor.token not in raw


def test_latest_token_wins(client: Client, saleor: FakeSaleor) -> None:
    assert register(client, saleor).status_code == 200
    saleor.token = "second-token"
    assert register(client, saleor).status_code == 200
    assert SaleorInstallation.objects.count() == 1
    assert SaleorInstallation.objects.get().token == "second-token"


def test_register_refuses_a_token_saleor_does_not_confirm(
    client: Client, saleor: FakeSaleor
) -> None:
    response = register(client, saleor, token="stolen")
    assert response.status_code == 400
    assert not SaleorInstallation.objects.exists()


def test_register_honours_the_allow_list(client: Client, saleor: FakeSaleor, settings: Any) -> None:
    settings.CMI_SALEOR_ALLOWED_API_URLS = ["https://other.example.com/graphql/"]
    response = register(client, saleor)
    assert response.status_code == 403
    assert saleor.calls == []
    assert not SaleorInstallation.objects.exists()
    settings.CMI_SALEOR_ALLOWED_API_URLS = [saleor.api_url]
    assert register(client, saleor).status_code == 200


def saleor_install_message(response: Any) -> str:
    """What Saleor's Dashboard shows for a refused install call.

    Models ``validate_app_install_response`` (saleor/app/installation_utils.py) and
    ``install_app_task``: ``error.message`` of the app's JSON answer when there is one,
    else "App internal error (<status>). Try later or contact with app support."
    """
    try:
        return str(response.json()["error"]["message"])
    except (TypeError, KeyError, ValueError):
        return (
            f"App internal error ({response.status_code}). Try later or contact with app support."
        )


def test_a_refused_install_tells_the_operator_what_to_fix(
    client: Client, saleor: FakeSaleor, settings: Any
) -> None:
    """Saleor's PUBLIC_URL decides Saleor-Api-Url; one character off (no final slash
    here) and the Dashboard says which URL arrived and which setting to change."""
    settings.CMI_SALEOR_ALLOWED_API_URLS = [saleor.api_url.rstrip("/")]
    response = register(client, saleor)
    assert response.status_code == 403
    shown = saleor_install_message(response)
    assert saleor.api_url in shown
    assert "CMI_SALEOR_ALLOWED_API_URLS" in shown
    assert "PUBLIC_URL" in shown
    assert saleor.token not in shown
    assert saleor.api_url.rstrip("/") + "'" not in shown  # the allow-list is not disclosed


def test_a_token_saleor_does_not_confirm_is_explained(client: Client, saleor: FakeSaleor) -> None:
    response = register(client, saleor, token="stolen-token-value")
    assert response.status_code == 400
    shown = saleor_install_message(response)
    assert "could not confirm the token" in shown
    assert "stolen-token-value" not in shown


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, {"auth_token": "x"}),
        ({"HTTP_SALEOR_API_URL": "ftp://saleor.example.com/graphql/"}, {"auth_token": "x"}),
        ({"HTTP_SALEOR_API_URL": "https://saleor.example.com/graphql/"}, {}),
    ],
)
def test_register_refuses_incomplete_calls(
    client: Client, saleor: FakeSaleor, headers: dict[str, str], body: dict[str, str]
) -> None:
    response = client.post(
        "/api/register", data=json.dumps(body), content_type="application/json", **headers
    )
    assert response.status_code == 400
    assert not SaleorInstallation.objects.exists()


def test_register_is_post_only(client: Client) -> None:
    assert client.get("/api/register").status_code == 405


@pytest.mark.parametrize("errors", [["boom"], "boom", [{"message": "no"}, 3]])
def test_odd_graphql_errors_are_api_errors(errors: Any) -> None:
    import responses
    from cmi_saleor.graphql import SaleorAPIError, execute

    with responses.RequestsMock() as mocked:
        mocked.add(responses.POST, "https://saleor.example/graphql/", json={"errors": errors})
        with pytest.raises(SaleorAPIError, match="Saleor API errors"):
            execute("https://saleor.example/graphql/", "token", "{ app { id } }")


def test_a_webhook_after_public_url_changed_says_what_to_do(
    client: Client, saleor: FakeSaleor, installation: Any
) -> None:
    """Installed as https://saleor.example.com/graphql/; Saleor's PUBLIC_URL then changes
    (here to http://): every webhook is refused, and Saleor's delivery log says why."""
    event = "TRANSACTION_PROCESS_SESSION"
    response = send(
        client,
        saleor,
        event,
        session_payload(event, new_transaction()),
        **{"Saleor-Api-Url": "http://saleor.example.com/graphql/"},
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert "PUBLIC_URL" in error
    assert "CMI_SALEOR_ALLOWED_API_URLS" in error
    assert saleor.token not in error
