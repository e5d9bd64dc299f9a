"""Plain Django views: CMI's callback, the okUrl/failUrl returns, inline pay buttons.

``wagtail.views.serve`` is CSRF-protected, so the POSTs that come from CMI (the
server-to-server callback, and the shopper's cross-site POST to okUrl/failUrl) are
CSRF-exempt Django views in :mod:`cmi_wagtail.urls`, included before ``wagtail_urls``.
The returns verify through :func:`cmi_django.services.handle_return`, then answer 303 to
the payment page's ``thank-you/`` or ``failure/`` route with a signed, shopper-safe
result; unverified ones go to ``cmi/unconfirmed/``, which shows no payment.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from cmi_django import services
from cmi_django.views import ReturnView as BaseReturnView
from cmi_django.views import callback_view
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views import View

from cmi_core.codes import LANGUAGES
from cmi_wagtail.checkout import (
    landing_token,
    language,
    read_button,
    read_landing,
    site_settings,
    start_payment,
)

__all__ = ["CheckoutView", "ResultView", "ReturnView", "callback_view"]


class ReturnView(BaseReturnView):
    """okUrl (``kind="ok"``) and failUrl (``kind="fail"``): 303 to the page's landing route."""

    unverified_url_name = "cmi_wagtail:unconfirmed"

    def get_redirect_url(self, outcome: services.ReturnOutcome) -> str:
        from cmi_wagtail.models import AbstractPaymentPage

        payment = outcome.payment  # verified: cmi_django sends the others elsewhere
        if payment is None:
            return self.get_unverified_url()
        message = outcome.shopper_message
        token = landing_token(payment.oid, approved=outcome.approved, message=message)
        landing_id = (payment.data or {}).get("landing_page_id")
        if landing_id:
            from wagtail.models import Page

            page = Page.objects.filter(pk=landing_id, live=True).first()
            specific = page.specific if page is not None else None
            if isinstance(specific, AbstractPaymentPage):
                route = "thank_you" if outcome.approved else "failure"
                base = specific.get_url(self.request)
                if base:
                    return f"{base}{specific.reverse_subpage(route)}?r={token}"
        return f"{reverse('cmi_wagtail:result')}?r={token}"


class ResultView(View):
    """The result of a payment started by a pay button with no payment page behind it."""

    def get(self, request: HttpRequest) -> HttpResponse:
        result = read_landing(request.GET.get("r", ""))
        if result is None:
            raise Http404("unknown payment result")
        payment = result["payment"]
        lang = payment.lang if payment is not None else "fr"
        with language(lang):
            response = TemplateResponse(
                request,
                "cmi_wagtail/result.html",
                {
                    "approved": result["approved"],
                    "message": result["message"],
                    "payment": payment,
                    "back_url": _back_url(payment, request),
                    "lang": lang,
                    "rtl": lang == "ar",
                },
            )
            response.render()
        return response


def _back_url(payment: Any, request: HttpRequest) -> str:
    from wagtail.models import Page

    page_id = (payment.data or {}).get("page_id") if payment is not None else None
    page = Page.objects.filter(pk=page_id, live=True).first() if page_id else None
    return (page.get_url(request) or "") if page is not None else "/"


class CheckoutView(View):
    """A pay button with no payment page: a short form (name, e-mail), then CMI.

    GET ``?button=<token>`` shows the form; POST validates it and starts the payment.
    The amount and currency come from the signed token, never from the form.
    """

    template_name = "cmi_wagtail/checkout.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        from wagtail.models import Page

        token = request.POST.get("button") or request.GET.get("button") or ""
        button = read_button(token)
        if button is None or button["target"] is not None:
            raise Http404("unknown pay button")
        page = Page.objects.filter(pk=button["page"], live=True).first()
        if page is None:
            raise Http404("the page of this pay button is gone")
        self.button, self.token, self.page = button, token, page.specific
        self.lang = _page_language(self.page, request)
        with language(self.lang):
            return super().dispatch(request, *args, **kwargs)

    def form(self, data: Any = None) -> Any:
        from cmi_wagtail.forms import ShopperForm

        rules = SimpleNamespace(
            currency=self.button["currency"],
            amount_rule="fixed",
            fixed_amount=self.button["amount"],
            min_amount=None,
            max_amount=None,
            ask_name=True,
            ask_phone=False,
            ask_address=False,
            amount_choices=list,
        )
        return ShopperForm(
            data,
            page=rules,  # type: ignore[arg-type]  # duck-typed: the page rules the form reads
            fixed_amount=self.button["amount"],
            currency=self.button["currency"],
        )

    def render(self, request: HttpRequest, form: Any) -> HttpResponse:
        response = TemplateResponse(
            request,
            self.template_name,
            {
                "form": form,
                "button": self.button,
                "token": self.token,
                "page": self.page,
                "lang": self.lang,
                "rtl": self.lang == "ar",
            },
        )
        response.render()
        return response

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.render(request, self.form())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = self.form(request.POST)
        if not form.is_valid():
            return self.render(request, form)
        return start_payment(
            request,
            page=self.page,
            landing=None,
            amount=form.chosen_amount(),
            currency=self.button["currency"],
            lang=self.lang,
            shopper=form.shopper(),
            description=self.button["label"],
            button=self.button,
        )


def _page_language(page: Any, request: HttpRequest) -> str:
    code = (getattr(getattr(page, "locale", None), "language_code", "") or "")[:2]
    if code in LANGUAGES:
        return code
    settings = site_settings(page, request)
    return settings.default_language if settings else "fr"
