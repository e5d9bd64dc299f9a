"""From a valid payer's form to CMI's payment page, and back to a landing page.

:func:`start_payment` is the one place a Wagtail payment starts: it names the site's
config key, builds the order in the core's neutral terms, calls
:func:`cmi_django.services.create_payment` and answers with the core's auto-submitting
form (:func:`cmi_core.render_redirect_form`).

Two signed tokens (Django's :mod:`~django.core.signing`, keyed by ``SECRET_KEY``) carry
state through the browser without trusting it: a pay button's label, amount, currency and
pages (so the amount cannot be edited in the page), and the result shown on a landing
page after the okUrl/failUrl POST (whose cross-site POST carries no session cookie).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cmi_django.browser import ReturnTokens, redirect_form_response
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from cmi_core import Address, CMIError, PaymentState
from cmi_wagtail.config import PLATFORM, config_key

if TYPE_CHECKING:
    from wagtail.models import Page, Site

    from cmi_wagtail.models import CMISettings

__all__ = [
    "button_token",
    "landing_token",
    "language",
    "read_button",
    "read_landing",
    "site_settings",
    "start_payment",
]

logger = logging.getLogger("cmi_wagtail")

BUTTON_SALT = "cmi_wagtail.pay_button"
LANDING_SALT = "cmi_wagtail.landing"
BUTTON_MAX_AGE = 7 * 24 * 3600
LANDING_MAX_AGE = 30 * 24 * 3600
_LANDING = ReturnTokens(LANDING_SALT, max_age=LANDING_MAX_AGE)


@contextlib.contextmanager
def language(lang: str) -> Iterator[None]:
    """Render in the payment's language (``ar`` is right to left in the templates)."""
    with translation.override(lang):
        yield


def site_of(page: Page, request: HttpRequest | None = None) -> Site | None:
    from wagtail.models import Site

    site = page.get_site()
    if site is None and request is not None:
        site = Site.find_for_request(request)
    return site


def site_settings(page: Page, request: HttpRequest | None = None) -> CMISettings | None:
    """The site's CMI settings; None without a site, or when its secrets cannot be
    decrypted (a key rotated without its fallback: logged, and the payment itself then
    shows the technical error page)."""
    from cmi_django.crypto import DecryptionError

    from cmi_wagtail.models import CMISettings

    site = site_of(page, request)
    if site is None:
        return None
    try:
        return CMISettings.for_site(site)
    except DecryptionError as exc:
        logger.error("CMI settings of site %s unreadable: %s", site.pk, exc)
        return None


# Tokens --------------------------------------------------------------------------------


def button_token(
    *, label: str, amount: Decimal, currency: str, page_id: int, target_id: int | None
) -> str:
    """The signed description of one pay button, as rendered on ``page_id``."""
    return signing.dumps(
        {"l": label, "a": str(amount), "c": currency, "p": page_id, "t": target_id},
        salt=BUTTON_SALT,
        compress=True,
    )


def read_button(token: str) -> dict[str, Any] | None:
    """The button a token describes, or None when forged or older than a week."""
    try:
        raw = signing.loads(token, salt=BUTTON_SALT, max_age=BUTTON_MAX_AGE)
        return {
            "label": str(raw["l"]),
            "amount": Decimal(raw["a"]),
            "currency": str(raw["c"]),
            "page": int(raw["p"]),
            "target": int(raw["t"]) if raw["t"] is not None else None,
        }
    except (signing.BadSignature, KeyError, TypeError, ValueError, ArithmeticError):
        return None


def landing_token(oid: str, *, approved: bool, message: str) -> str:
    """The signed result a landing page shows (``read_landing``)."""
    return _LANDING.sign(oid, a=approved, m=message)


def read_landing(token: str) -> dict[str, Any] | None:
    """What a landing page shows: ``approved``, ``message`` and the ``payment`` (or None)."""
    from cmi_wagtail.models import WagtailPayment

    raw = _LANDING.read(token)
    if raw is None:
        return None
    try:
        oid, approved, message = str(raw["o"]), bool(raw["a"]), str(raw["m"])
    except (KeyError, TypeError, ValueError):  # the oid alone: not a landing token
        return None
    payment = WagtailPayment.objects.filter(oid=oid).first() if oid else None
    if payment is not None:
        approved = approved and PaymentState(payment.state).is_paid
    return {"approved": approved, "message": message, "payment": payment}


# Starting a payment ---------------------------------------------------------------------


def _absolute(request: HttpRequest, name: str) -> str:
    return request.build_absolute_uri(reverse(name))


def start_payment(
    request: HttpRequest,
    *,
    page: Page,
    landing: Page | None,
    amount: Decimal,
    currency: str,
    lang: str,
    shopper: Mapping[str, str],
    description: str = "",
    button: Mapping[str, Any] | None = None,
) -> HttpResponse:
    """Create the payment (``cmi_django``) and send the browser to CMI.

    ``page`` took the payment (its id is the payment's ``reference``); ``landing`` is the
    payment page whose ``thank-you/`` and ``failure/`` routes show the result (None: the
    generic result page of ``cmi_wagtail.urls``).
    """
    from cmi_django import services

    site = site_of(page, request)
    if site is None:
        return unavailable(request, lang)
    address = None
    if shopper.get("street") or shopper.get("city"):
        address = Address(
            street1=shopper.get("street", ""),
            city=shopper.get("city", ""),
            postal_code=shopper.get("postal_code", ""),
        )
    landing_page = landing or page
    if landing is not None:
        back = (landing.get_url(request) or "/") + landing.reverse_subpage("cancel")
    else:
        back = page.get_url(request) or "/"
    shop_url = request.build_absolute_uri(back)
    order = {
        "amount": amount,
        "currency": currency,
        "lang": lang,
        "email": shopper["email"],
        "billing_name": shopper.get("name") or shopper["email"],
        "phone": shopper.get("phone", ""),
        "billing": address,
        "description": description,
        "ok_url": _absolute(request, "cmi_wagtail:ok"),
        "fail_url": _absolute(request, "cmi_wagtail:fail"),
        "callback_url": _absolute(request, "cmi_wagtail:callback"),
        "shop_url": shop_url,
    }
    data = {
        "page_id": page.pk,
        "page_title": page.title,
        "landing_page_id": landing.pk if landing is not None else None,
        "site_id": site.pk,
        "shopper": dict(shopper),
        "button": dict(button, amount=str(button["amount"])) if button else None,
    }
    try:
        payment, signed = services.create_payment(
            platform=PLATFORM,
            reference=str(page.pk),
            order=order,
            config_key=config_key(site),
            data=data,
        )
    except (ImproperlyConfigured, CMIError):
        logger.exception("cannot start a CMI payment on page %s (%s)", page.pk, landing_page.title)
        return unavailable(request, lang)
    response = redirect_form_response(signed, lang=lang)
    logger.info("CMI payment %s started on page %s", payment.oid, page.pk)
    return response


def unavailable(request: HttpRequest, lang: str) -> HttpResponse:
    """Payments cannot start (settings missing or refused): say so, log the reason."""
    with language(lang):
        response = TemplateResponse(
            request,
            "cmi_wagtail/result.html",
            {
                "approved": False,
                "message": _("Card payments are not available at the moment. Please try later."),
                "lang": lang,
                "rtl": lang == "ar",
            },
            status=503,
        )
        response.render()
    return response
