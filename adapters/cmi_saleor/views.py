"""HTTP endpoints: manifest, register, webhooks, CMI's callback and returns, health.

Thin: read the request, check who sent it, call :mod:`cmi_saleor.webhooks` or
:mod:`cmi_django.services`, answer. Every webhook is refused with 401/403 and no effect
unless it is a POST from a registered Saleor (``Saleor-Api-Url``), for the event its URL
names (``Saleor-Event``), signed with that Saleor's key (``Saleor-Signature``) and
addressed to this installation (``recipient.id``).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cmi_django import services
from cmi_django.views import ReturnView as BaseReturnView
from cmi_django.views import callback_view as cmi_callback_view
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

import cmi_core
from cmi_saleor import cache, conf
from cmi_saleor.graphql import APP_ID_QUERY, SUBSCRIPTIONS, SaleorAPIError, execute
from cmi_saleor.hooks import SaleorReportError, decline_is_final, report_final_failure
from cmi_saleor.jsonbody import BadJSONError, read_object
from cmi_saleor.models import SaleorInstallation, TransactionMap
from cmi_saleor.security import InvalidSignatureError, fetch_jwks, verify_webhook
from cmi_saleor.webhooks import HANDLERS

__all__ = ["callback", "health", "manifest", "register", "return_view", "webhook"]

logger = logging.getLogger("cmi_saleor")

REQUIRED_SALEOR_VERSION = ">=3.22"
MAX_WEBHOOK_BODY = 1024 * 1024
#: Saleor's install call carries one token: a few hundred bytes.
MAX_REGISTER_BODY = 64 * 1024


def event_slug(event: str) -> str:
    """``TRANSACTION_INITIALIZE_SESSION`` -> ``transaction-initialize-session``."""
    return event.lower().replace("_", "-")


_EVENTS = {event_slug(e): e for e in HANDLERS}


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


#: A webhook from a Saleor-Api-Url no installation has (Saleor's PUBLIC_URL changed since
#: the install, or the app was never installed there): what to do, in Saleor's delivery log.
UNKNOWN_API_URL = (
    "unknown Saleor-Api-Url: this app has no installation for it. Saleor's PUBLIC_URL "
    "decides the URL it sends: install the app again from that Saleor (the URL must be in "
    "CMI_SALEOR_ALLOWED_API_URLS)"
)


def _install_error(status: int, code: str, message: str) -> JsonResponse:
    """A refused install call, in the shape Saleor shows its operator.

    Saleor's installer (``validate_app_install_response``, saleor/app/installation_utils.py)
    reads ``error.message`` from the app's answer and shows it as the installation's
    message in the Dashboard; any other shape becomes "App internal error (403). Try later
    or contact with app support.", which tells the operator nothing. So the message says
    what to fix, and never carries a secret (the token is not echoed).
    """
    return JsonResponse({"error": {"code": code, "message": message[:500]}}, status=status)


def not_allowed_message(api_url: str) -> str:
    """Why an install from ``api_url`` was refused, and what to change (no secrets)."""
    return (
        f"Saleor-Api-Url {api_url!r} is not in the CMI app's CMI_SALEOR_ALLOWED_API_URLS. "
        "Add this exact URL there (scheme, host, port, path and final slash as shown), or "
        "set Saleor's PUBLIC_URL so that it sends the URL already listed."
    )


@require_GET
def manifest(request: HttpRequest) -> JsonResponse:
    """The app manifest Saleor installs from (the gateway id is ``id``)."""
    webhooks = [
        {
            "name": f"CMI {event.replace('_', ' ').lower()}",
            "syncEvents": [event],
            "query": query,
            "targetUrl": conf.absolute("webhook", event=event_slug(event)),
            "isActive": True,
        }
        for event, query in SUBSCRIPTIONS.items()
    ]
    return JsonResponse(
        {
            "id": conf.app_id(),
            "name": conf.app_name(),
            "version": cmi_core.__version__,  # pyproject.toml's, via the metadata
            "about": "Card payments through CMI (Centre Monétique Interbancaire, Morocco).",
            "permissions": ["HANDLE_PAYMENTS"],
            "appUrl": conf.absolute("configuration"),
            "tokenTargetUrl": conf.absolute("register"),
            "requiredSaleorVersion": REQUIRED_SALEOR_VERSION,
            "author": "cmi-payments",
            "brand": None,
            "webhooks": webhooks,
            "extensions": [],
        }
    )


@csrf_exempt
@require_POST
def register(request: HttpRequest) -> JsonResponse:
    """Saleor's install call: check the token, store it with the app id and JWKS."""
    api_url = request.headers.get("Saleor-Api-Url", "").strip()
    if not conf.plausible_api_url(api_url):
        return _install_error(
            400, "INVALID_API_URL", "missing or invalid Saleor-Api-Url header (Saleor 3.22+)"
        )
    if not conf.api_url_allowed(api_url):
        logger.warning("registration refused for %s: not in CMI_SALEOR_ALLOWED_API_URLS", api_url)
        return _install_error(403, "API_URL_NOT_ALLOWED", not_allowed_message(api_url))
    try:
        token = read_object(request.read(MAX_REGISTER_BODY + 1), limit=MAX_REGISTER_BODY).get(
            "auth_token"
        )
    except BadJSONError as exc:
        return _install_error(
            exc.status, "BAD_REQUEST", f"{exc}: a JSON object with auth_token is expected"
        )
    if not isinstance(token, str) or not token or len(token) > 4096:
        return _install_error(400, "BAD_REQUEST", "auth_token missing")
    try:
        app = execute(api_url, token, APP_ID_QUERY).get("app") or {}
        jwks = fetch_jwks(api_url)
    except (SaleorAPIError, InvalidSignatureError) as exc:
        logger.warning("registration for %s failed: %s", api_url, exc)
        return _install_error(
            400,
            "SALEOR_UNREACHABLE",
            f"the CMI app could not confirm the token with the Saleor at {api_url!r} "
            "(GraphQL and /.well-known/jwks.json): check that the app's server reaches that "
            "URL (Saleor's PUBLIC_URL decides it)",
        )
    app_id = app.get("id") if isinstance(app, dict) else None
    if not isinstance(app_id, str) or not app_id:
        return _install_error(400, "BAD_TOKEN", "the token does not identify an app")
    from django.utils import timezone

    with transaction.atomic():
        # The stored token is not read (deferred): a token saved under a key since lost
        # is simply replaced by this one.
        SaleorInstallation.objects.defer("token").update_or_create(
            saleor_api_url=api_url,
            defaults={
                "app_id": app_id,
                "token": token,
                "jwks": jwks,
                "jwks_fetched_at": timezone.now(),
            },
        )
    logger.info("installed for %s (app %s)", api_url, app_id)
    return JsonResponse({"success": True})


# CMI may be called: never inside ATOMIC_REQUESTS' transaction (docs/django-layer.md)
@transaction.non_atomic_requests
@csrf_exempt
def webhook(request: HttpRequest, event: str) -> JsonResponse:
    """Every sync payment webhook: verify, then hand the payload to its handler."""
    name = _EVENTS.get(event)
    if name is None:
        return _error(404, "unknown event")
    if request.method != "POST":
        response = _error(405, "POST only")
        response["Allow"] = "POST"
        return response
    api_url = request.headers.get("Saleor-Api-Url", "")
    if not conf.plausible_api_url(api_url):
        return _error(403, UNKNOWN_API_URL)
    # The app token is not needed to answer a webhook: not read, so not decrypted.
    installation, remembered, read_in = cache.installation(api_url)
    if installation is None:
        return _error(403, UNKNOWN_API_URL)
    if request.headers.get("Saleor-Event", "").lower() != name.lower():
        return _error(403, "Saleor-Event does not match this endpoint")
    body = request.read(MAX_WEBHOOK_BODY + 1)
    if len(body) > MAX_WEBHOOK_BODY:
        return _error(413, "body too large")
    signature = request.headers.get("Saleor-Signature", "")
    checked = _check(name, installation, body, signature, final=not remembered)
    if isinstance(checked, JsonResponse) and remembered:
        # This process may remember an older app id or JWKS: check with the row itself.
        installation, remembered, read_in = cache.installation(api_url, fresh=True)
        if installation is None:
            return _error(403, UNKNOWN_API_URL)
        checked = _check(name, installation, body, signature, final=True)
    if isinstance(checked, JsonResponse):
        return checked
    if not remembered:  # read from the database and verified: trust it for a while
        cache.remember_installation(installation, read_in)
    answer = HANDLERS[name](installation, checked)
    return JsonResponse(answer)


def _check(
    name: str, installation: SaleorInstallation, body: bytes, signature: str, *, final: bool
) -> dict[str, Any] | JsonResponse:
    """The verified payload, or the refusal.

    ``final``: no other check follows (the installation was read from the database), so a
    failed signature may re-fetch the JWKS, and a refusal is logged.
    """
    try:
        verify_webhook(installation, body, signature, refetch=final)
    except InvalidSignatureError as exc:
        if final:
            logger.warning("%s webhook from %s refused: %s", name, installation.saleor_api_url, exc)
        return _error(401, "invalid signature")
    try:
        payload = read_object(body)
    except BadJSONError as exc:
        return _error(400, str(exc))
    recipient = payload.get("recipient")
    if not isinstance(recipient, dict) or recipient.get("id") != installation.app_id:
        return _error(403, "recipient is not this app")
    return payload


#: CMI's server-to-server callback: the shared layer's view (plain text, never a 500).
callback = cmi_callback_view


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


class ReturnView(BaseReturnView):
    """The shopper's okUrl/failUrl POST (``kind`` from the URL): verify, then 303 to the
    storefront's return URL; unverified, or with no return URL: 400 in plain text."""

    def get_redirect_url(self, outcome: services.ReturnOutcome) -> str | None:
        mapping = TransactionMap.objects.filter(payment=outcome.payment).first()
        # The host is checked again: the allow-list may have shrunk since the payment began
        # (or the row predates it), and the shopper is never sent where it no longer allows.
        if mapping is None or not mapping.return_url:
            return None
        if not conf.return_url_allowed(mapping.return_url):
            return None
        payment = outcome.payment
        if self.kind == "fail" and payment is not None and decline_is_final(payment):
            # the shopper left CMI's page: the attempt is over, Saleor hears it is final
            try:
                report_final_failure(payment, outcome.result)
            except SaleorReportError as exc:  # the process session will answer it too
                logger.warning("could not report the failed attempt %s: %s", payment.oid, exc)
        params: dict[str, Any] = {"transaction": mapping.transaction_id, "cmi": self.kind}
        if outcome.shopper_message:
            params["message"] = outcome.shopper_message
        return _with_query(mapping.return_url, **params)

    def unverified_response(self, outcome: services.ReturnOutcome) -> HttpResponse:
        return HttpResponse(
            "Le paiement n'a pas pu être vérifié. / The payment could not be verified.",
            status=400,
            content_type="text/plain; charset=utf-8",
        )


return_view = ReturnView.as_view()


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness and database check."""
    try:
        SaleorInstallation.objects.exists()
    except Exception:  # any database failure makes the app unhealthy
        logger.exception("health check: database unavailable")
        return JsonResponse({"status": "error", "database": False}, status=503)
    return JsonResponse({"status": "ok", "database": True})
