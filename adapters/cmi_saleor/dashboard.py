"""The configuration page Saleor's Dashboard shows at ``appUrl``, and its JSON API.

The Dashboard loads the page in an iframe (``?saleorApiUrl=...``) and hands it a JWT
through ``postMessage`` (the "handshake"). The page sends that JWT back with every API
call (``Authorization-Bearer``, ``Saleor-Api-Url``); the API verifies it with the
installation's JWKS, checks that it was issued for this app and that the staff user has
``HANDLE_PAYMENTS``. Secrets are write-only (masked in answers, empty keeps them).

The page follows the Dashboard's theme and language as apps built on
``@saleor/app-sdk``'s AppBridge do, in a few lines of its own script (no npm package):
``?theme=`` and ``?locale=`` of the frame's URL first, then the Dashboard's ``theme``
(``{theme: "light" | "dark"}``) and ``localeChanged`` (``{locale}``) messages; it tells
the Dashboard it is ready with AppBridge's ``dispatch`` handshake (``notifyReady`` with an
``actionId``, answered by a ``response`` carrying that id). Its words come from this
app's catalogues (:data:`PAGE_STRINGS`, in en, fr and ar; Arabic right to left); other
Dashboard languages get English.
"""

from __future__ import annotations

import logging
from typing import Any

from cmi_django.crypto import DecryptionError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from cmi_core.codes import LANGUAGES
from cmi_saleor import conf
from cmi_saleor.forms import ChannelConfigurationForm, mask
from cmi_saleor.jsonbody import BadJSONError, read_object
from cmi_saleor.models import ChannelConfiguration, SaleorInstallation
from cmi_saleor.security import InvalidSignatureError, verify_dashboard_token

__all__ = ["configuration_api", "configuration_page"]

logger = logging.getLogger("cmi_saleor")

#: A channel's configuration is a few hundred bytes.
MAX_BODY = 64 * 1024

FIELDS = (
    "channel",
    "enabled",
    "client_id",
    "api_username",
    "capture_mode",
    "environment",
    "base_url",
    "lang",
)


#: Every word the configuration page shows, by the key its elements carry (``data-i18n``).
PAGE_STRINGS = {
    "title": _("CMI payments"),
    "waiting": _("Waiting for the Saleor Dashboard…"),
    "connected": _("Connected to %s"),
    "not_authorised": _("Not authorised"),
    "unreachable": _("The app cannot be reached."),
    "http_error": _("The app answered HTTP %s; see its server log."),
    "no_referrer": _(
        "This page cannot tell which site shows it (no Referer): open it from the Saleor Dashboard."
    ),
    "standalone": _("Open this page from the Saleor Dashboard (Apps → CMI), or use Django admin."),
    "channels": _("Channels"),
    "channel": _("Channel"),
    "enabled": _("Enabled"),
    "client_id": _("Client id"),
    "store_key": _("Store key"),
    "api_user": _("API user"),
    "api_password": _("API password"),
    "capture": _("Capture"),
    "environment": _("Environment"),
    "language": _("Language"),
    "add": _("Add or change a channel"),
    "channel_slug": _("Channel slug"),
    "cmi_client_id": _("CMI client id"),
    "store_key_help": _("Store key (write-only: empty keeps the stored one)"),
    "api_username": _("API user name"),
    "api_password_help": _("API password (write-only)"),
    "capture_help": _(
        "Capture when Saleor sends no actionType (each payment follows Saleor's actionType)"
    ),
    "auto": _("automatic (charge)"),
    "manual": _("manual (authorize)"),
    "env_test": _("test platform"),
    "env_production": _("production"),
    "lang_fr": _("French"),
    "lang_en": _("English"),
    "lang_ar": _("Arabic"),
    "page_language": _("Payment page language"),
    "base_url": _("Gateway base URL (only for an emulator)"),
    "save": _("Save"),
    "yes": _("yes"),
    "no": _("no"),
}
#: The languages the page speaks, CMI's own (the Dashboard's others fall back to English).
PAGE_LANGUAGES = LANGUAGES


def page_strings() -> dict[str, dict[str, str]]:
    """:data:`PAGE_STRINGS` in each of :data:`PAGE_LANGUAGES`, for the page's script."""
    strings: dict[str, dict[str, str]] = {}
    for lang in PAGE_LANGUAGES:
        with translation.override(lang):
            strings[lang] = {key: str(text) for key, text in PAGE_STRINGS.items()}
    return strings


def frame_ancestors(request: HttpRequest) -> str:
    """The ``frame-ancestors`` sources: who may frame the configuration page.

    The Dashboard frames ``appUrl?saleorApiUrl=<its API URL>``. When that URL is a
    registered installation, its origin may frame the page (Saleor Cloud and most
    deployments serve the Dashboard from the API's origin), and so may the origins of
    ``CMI_SALEOR_DASHBOARD_ORIGINS`` (a Dashboard on another origin). Anything else:
    ``'none'``. A page framed by a stranger naming a genuine Saleor is refused by the
    browser all the same, since the stranger's origin is not among these.
    """
    sources = []
    api_url = request.GET.get("saleorApiUrl", "")
    if (
        conf.plausible_api_url(api_url)
        and SaleorInstallation.objects.filter(saleor_api_url=api_url).exists()
    ):
        sources.append(conf.origin(api_url))
    sources.extend(conf.dashboard_origins())
    unique = [s for i, s in enumerate(sources) if s and s not in sources[:i]]
    return " ".join(unique) or "'none'"


@xframe_options_exempt  # framed by the Dashboard: the CSP below says by whom
@require_GET
def configuration_page(request: HttpRequest) -> HttpResponse:
    """Static page; everything it shows comes from the token-checked API."""
    response = render(request, "cmi_saleor/configuration.html", {"strings": page_strings()})
    response["Content-Security-Policy"] = f"frame-ancestors {frame_ancestors(request)}"
    return response


def _describe(config: ChannelConfiguration) -> dict[str, Any]:
    described: dict[str, Any] = {name: getattr(config, name) for name in FIELDS}
    described["store_key"] = mask(config.store_key)
    described["api_password"] = mask(config.api_password)
    return described


def _authenticate(request: HttpRequest) -> SaleorInstallation | JsonResponse:
    api_url = request.headers.get("Saleor-Api-Url", "")
    # The app token is not needed here: not read (so not decrypted).
    installation = (
        SaleorInstallation.objects.defer("token").filter(saleor_api_url=api_url).first()
        if conf.plausible_api_url(api_url)
        else None
    )
    if installation is None:
        return JsonResponse({"error": "unknown Saleor-Api-Url"}, status=403)
    token = request.headers.get("Authorization-Bearer", "")
    if not token and request.headers.get("Authorization", "").startswith("Bearer "):
        token = request.headers["Authorization"][7:]
    try:
        verify_dashboard_token(installation, token.strip())
    except InvalidSignatureError as exc:
        return JsonResponse({"error": f"not authorised: {exc}"}, status=401)
    return installation


@csrf_exempt  # authenticated by the Dashboard's bearer token, not by a cookie
def configuration_api(request: HttpRequest) -> JsonResponse:
    if request.method not in ("GET", "POST"):
        return JsonResponse({"error": "GET or POST"}, status=405)
    installation = _authenticate(request)
    if isinstance(installation, JsonResponse):
        return installation
    try:
        with transaction.atomic():  # nothing saved when the answer cannot be built
            return _configure(request, installation)
    except DecryptionError as exc:  # a key rotated without its fallback: say which setting
        logger.error("channel configurations of %s unreadable: %s", installation, exc)
        return JsonResponse({"error": str(exc)}, status=503)


def _configure(request: HttpRequest, installation: SaleorInstallation) -> JsonResponse:
    """POST: save one channel's configuration; both: every channel's, secrets masked."""
    if request.method == "POST":
        try:
            data = read_object(request.read(MAX_BODY + 1), limit=MAX_BODY)
        except BadJSONError as exc:
            return JsonResponse({"error": str(exc)}, status=exc.status)
        if not isinstance(data.get("channel"), str):
            return JsonResponse({"error": "a JSON object with a channel slug"}, status=400)
        instance = ChannelConfiguration.objects.filter(
            installation=installation, channel=data["channel"]
        ).first()
        values = {k: v for k, v in data.items() if k in (*FIELDS, "store_key", "api_password")}
        values["installation"] = installation.pk
        if instance is not None and "enabled" not in data:
            values["enabled"] = instance.enabled
        values.setdefault("enabled", True)
        form = ChannelConfigurationForm(values, instance=instance)
        if not form.is_valid():
            return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
        form.save()
    channels = [_describe(c) for c in installation.channels.order_by("channel")]
    return JsonResponse({"saleorApiUrl": installation.saleor_api_url, "channels": channels})
