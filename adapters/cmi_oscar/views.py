"""The shopper's side: the payment step of Oscar's checkout, and CMI's return receivers.

- :class:`CMIPaymentDetailsMixin` goes before Oscar's ``PaymentDetailsView``: "Place
  order" freezes the basket (Oscar's ``submit``), stores what the order needs in a
  ``cmi_django`` payment (one per attempt, oid ``<order number>-<n>``) and answers the
  auto-submitting form that carries the shopper to CMI (a POST, which Oscar's
  ``RedirectRequired`` cannot do). The order is placed later, by the callback.
- :class:`OkReturnView` / :class:`FailReturnView`: CMI's okUrl/failUrl POSTs
  (CSRF-exempt, verified by ``cmi_django``), answered 303 to a GET page, where the
  shopper's session cookie is back (SameSite drops it on the cross-site POST). Only a
  verified POST gets a signed token for its payment's pages; the others go to the neutral
  ``cmi_oscar:unconfirmed`` page.
- :class:`ReturnPageView`: the thank-you page once the order exists, a short wait while
  the callback is on its way, or a review notice when the payment needs staff.
- :class:`FailPageView` and :class:`CancelView` (CMI's ``shopurl``): the basket is
  thawed (only while the payment is unpaid and not waiting for staff) and the shopper is
  back on the payment step with a shopper-safe message.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from cmi_django import services
from cmi_django.browser import ReturnTokens, redirect_form_response
from cmi_django.config import get_config
from cmi_django.models import Payment
from cmi_django.views import ReturnView
from django.contrib import messages
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views import View
from oscar.core.loading import get_class, get_classes

from cmi_core import (
    Address,
    CMIError,
    LineItem,
    PaymentState,
    ValidationError,
    shopper_message,
)
from cmi_core.codes import LANGUAGES
from cmi_oscar import conf
from cmi_oscar.placement import find_order, submission_data, thaw_basket

logger = logging.getLogger("cmi_oscar")

__all__ = [
    "CMIPaymentDetailsMixin",
    "CancelView",
    "FailPageView",
    "FailReturnView",
    "OkReturnView",
    "ReturnPageView",
    "payment_token",
]

PLATFORM = "oscar"
_ATTEMPTS = 50


_TOKENS = ReturnTokens("cmi_oscar.return", max_age=2 * 24 * 3600)  # a shopper may be late


def payment_token(oid: str) -> str:
    """The signed oid in return URLs: only whoever CMI sent back can open the page."""
    return _TOKENS.sign(oid)


def _payment_from_token(token: str) -> Payment:
    oid = (_TOKENS.read(token) or {}).get("o", "")
    return get_object_or_404(Payment, oid=oid, platform=PLATFORM)


def _lang() -> str:
    lang = (get_language() or "")[:2]
    return lang if lang in LANGUAGES else ""


def _country(address: Any) -> str:
    country = getattr(address, "country", None) if address else None
    return str(getattr(country, "iso_3166_1_numeric", "") or "").zfill(3) if country else ""


def _billing(address: Any) -> Address | None:
    if not address:
        return None
    return Address(
        street1=address.line1 or "",
        street2=address.line2 or "",
        city=address.line4 or "",
        state=address.state or "",
        postal_code=address.postcode or "",
        country=_country(address),
    )


def _items(basket: Any) -> list[LineItem]:
    items = []
    for line in basket.all_lines():
        unit = line.unit_price_incl_tax
        total = line.line_price_incl_tax_incl_discounts
        items.append(
            LineItem(
                id=str(line.product.upc or line.product_id)[:128],
                product_code=(line.stockrecord.partner_sku if line.stockrecord else "")[:64],
                description=line.product.get_title(),
                quantity=line.quantity,
                unit_price=unit if unit and unit > 0 else None,
                total=total if total and total > 0 else None,
            )
        )
    return items


class CMIPaymentDetailsMixin:
    """Put before Oscar's ``PaymentDetailsView``: pay the order through CMI's page.

    ``submit()`` (Oscar's) freezes the basket and calls :meth:`handle_payment`, which
    starts the CMI payment; :meth:`handle_order_placement` then answers the form that
    carries the shopper to CMI instead of placing the order (the callback places it).
    """

    template_name = "cmi_oscar/checkout/payment_details.html"
    template_name_preview = "cmi_oscar/checkout/preview.html"
    cmi_config_key: str | None = None
    _cmi_submission: dict[str, Any] | None = None
    _cmi_response: HttpResponse | None = None

    def submit(self, user: Any, basket: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        names = ("shipping_address", "shipping_method", "shipping_charge", "billing_address")
        submission = dict(zip(names, args, strict=False))
        submission.update({k: v for k, v in kwargs.items() if k != "payment_kwargs"})
        self._cmi_submission = {"user": user, "basket": basket, **submission}
        return super().submit(user, basket, *args, **kwargs)  # type: ignore[misc]  # a mixin: Oscar's view follows it

    def handle_payment(self, order_number: Any, total: Any, **kwargs: Any) -> None:
        self._cmi_response = None
        if total.incl_tax <= 0:  # nothing to pay: Oscar places the order itself
            return
        exceptions = get_classes("payment.exceptions", ["UnableToTakePayment", "PaymentError"])
        unable, payment_error = exceptions
        try:
            payment, request = self.start_cmi_payment(str(order_number), total)
        except ValidationError as exc:
            logger.warning("Order #%s: CMI refused the request: %s", order_number, exc)
            raise unable(
                _("Your order cannot be paid by card: %(reason)s") % {"reason": exc}
            ) from exc
        except CMIError as exc:
            raise payment_error(str(exc)) from exc
        self._cmi_response = redirect_form_response(request, lang=payment.lang)

    def handle_order_placement(self, *args: Any, **kwargs: Any) -> HttpResponse:
        if self._cmi_response is None:
            return super().handle_order_placement(*args, **kwargs)  # type: ignore[misc]  # as above
        return self._cmi_response

    def start_cmi_payment(self, order_number: str, total: Any) -> tuple[Payment, Any]:
        """Store the payment (what the order needs) and sign its form; a new oid each time."""
        request: HttpRequest = self.request  # type: ignore[attr-defined]  # set by Oscar's view
        sub = self._cmi_submission or {}
        user, basket = sub["user"], sub["basket"]
        order_kwargs = sub.get("order_kwargs") or {}
        email = (user.email if user.is_authenticated else "") or order_kwargs.get("guest_email", "")
        billing = sub.get("billing_address") or sub.get("shipping_address")
        name = (billing.name if billing else "") or (
            user.get_full_name() if user.is_authenticated else ""
        )
        data = submission_data(
            order_number=order_number,
            user=user,
            basket=basket,
            shipping_address=sub.get("shipping_address"),
            shipping_method=sub["shipping_method"],
            shipping_charge=sub["shipping_charge"],
            billing_address=sub.get("billing_address"),
            order_total=total,
            surcharges=sub.get("surcharges"),
            guest_email=order_kwargs.get("guest_email", ""),
        )
        config_key = self.cmi_config_key or conf.config_key()
        currency = get_config(config_key).currency if not total.currency else total.currency
        attempt = Payment.objects.filter(platform=PLATFORM, reference=order_number).count()
        for _n in range(_ATTEMPTS):
            attempt += 1
            oid = f"{order_number}-{attempt}"
            if Payment.objects.filter(oid=oid).exists():
                continue
            token = payment_token(oid)
            order = {
                "oid": oid,
                "amount": Decimal(total.incl_tax),
                "currency": currency,
                "email": email,
                "billing_name": name or email,
                "phone": str(getattr(billing, "phone_number", "") or "")[:32],
                "billing": _billing(billing),
                "items": _items(basket),
                "description": _("Order %(number)s") % {"number": order_number},
                "ok_url": request.build_absolute_uri(reverse("cmi_oscar:ok")),
                "fail_url": request.build_absolute_uri(reverse("cmi_oscar:fail")),
                "callback_url": request.build_absolute_uri(reverse("cmi_oscar:callback")),
                "shop_url": request.build_absolute_uri(reverse("cmi_oscar:cancel", args=[token])),
                "lang": _lang() or None,
            }
            try:
                return services.create_payment(
                    platform=PLATFORM,
                    reference=order_number,
                    order=order,
                    config_key=config_key,
                    data=data,
                )
            except IntegrityError:  # another request took this oid meanwhile
                continue
        raise RuntimeError(f"no free CMI oid for order {order_number}")  # pragma: no cover


def _to_payment_step(request: HttpRequest, payment: Payment, message: str) -> HttpResponseBase:
    """Thaw the basket, tell the shopper, and send them back to the payment step.

    Only an unpaid payment's basket is thawed: one that is paid or waiting for staff keeps
    its frozen basket (the order is, or may still be, placed from it).
    """
    if not PaymentState(payment.state).is_pending:
        return ReturnPageView.as_view()(request, token=payment_token(payment.oid))
    basket = thaw_basket(payment, getattr(request, "basket", None))
    if basket is not None and hasattr(request, "basket") and basket.id != request.basket.id:
        request.basket = basket
    if message:
        messages.error(request, message)
    return HttpResponseRedirect(reverse("checkout:payment-details"))


class OkReturnView(ReturnView):
    """CMI's okUrl POST: verified (and the order placed if the callback has not come)."""

    kind = "ok"
    unverified_url_name = "cmi_oscar:unconfirmed"

    def get_redirect_url(self, outcome: services.ReturnOutcome) -> str:
        payment = outcome.payment  # verified: cmi_django sends the others elsewhere
        if payment is None or not outcome.verified or payment.platform != PLATFORM:
            return self.get_unverified_url()
        return reverse("cmi_oscar:return", args=[payment_token(payment.oid)])


class FailReturnView(ReturnView):
    """CMI's failUrl POST: the shopper gave up or the last attempt failed."""

    kind = "fail"
    unverified_url_name = "cmi_oscar:unconfirmed"

    def get_redirect_url(self, outcome: services.ReturnOutcome) -> str:
        payment, result = outcome.payment, outcome.result
        if payment is None or result is None or payment.platform != PLATFORM:
            return self.get_unverified_url()
        token = payment_token(payment.oid)
        if result.approved:  # an approval posted to failUrl: nothing to thaw
            return reverse("cmi_oscar:return", args=[token])
        url = reverse("cmi_oscar:failed", args=[token])
        return url + "?" + _codes_query(result.proc_return_code, result.err_code)


def _codes_query(proc_return_code: str, err_code: str) -> str:
    return urlencode({"code": proc_return_code[:8], "err": err_code[:32]})


class ReturnPageView(View):
    """GET after okUrl: the thank-you page, a short wait, or a review notice."""

    http_method_names = ("get",)
    wait_template = "cmi_oscar/checkout/processing.html"

    def get(self, request: HttpRequest, token: str) -> HttpResponseBase:
        payment = _payment_from_token(token)
        order = find_order(payment)
        state = PaymentState(payment.state)
        if order is not None and state.is_paid:
            get_class("checkout.utils", "CheckoutSessionData")(request).flush()
            request.session["checkout_order_id"] = order.id
            return HttpResponseRedirect(reverse("checkout:thank-you"))
        if state is PaymentState.DECLINED:
            message = shopper_message(
                payment.proc_return_code, payment.error_code, _shopper_lang(payment)
            )
            return _to_payment_step(request, payment, message)
        review = state is PaymentState.NEEDS_ATTENTION or order is not None
        context = {"payment": payment, "review": review, "order_number": payment.reference}
        return render(request, self.wait_template, context, status=200 if review else 202)


def _shopper_lang(payment: Payment) -> Any:
    lang = _lang() or payment.lang
    return lang if lang in LANGUAGES else "fr"


class FailPageView(View):
    """GET after failUrl: basket thawed, back to the payment step with CMI's reason."""

    http_method_names = ("get",)

    def get(self, request: HttpRequest, token: str) -> HttpResponseBase:
        payment = _payment_from_token(token)
        if PaymentState(payment.state).is_paid and find_order(payment) is not None:
            return ReturnPageView.as_view()(request, token=token)
        code = request.GET.get("code") or payment.proc_return_code or None
        err = request.GET.get("err") or payment.error_code or None
        return _to_payment_step(
            request, payment, shopper_message(code, err, _shopper_lang(payment))
        )


class CancelView(View):
    """CMI's ``shopurl`` (the Cancel link on its page): back to the payment step."""

    http_method_names = ("get",)

    def get(self, request: HttpRequest, token: str) -> HttpResponseBase:
        payment = _payment_from_token(token)
        if PaymentState(payment.state).is_paid and find_order(payment) is not None:
            return ReturnPageView.as_view()(request, token=token)
        return _to_payment_step(request, payment, _("Payment cancelled. Your basket is unchanged."))
