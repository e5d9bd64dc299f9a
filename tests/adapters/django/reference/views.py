"""The shopper's side: pay an order, come back from CMI, see the order."""

from __future__ import annotations

from cmi_django import services
from cmi_django.browser import ReturnTokens, redirect_form_response
from cmi_django.models import Payment
from cmi_django.views import ReturnView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_POST

from .hooks import PLATFORM
from .models import Order

TOKENS = ReturnTokens("cmi_reference.return", max_age=2 * 24 * 3600)


@require_POST
def pay(request: HttpRequest, number: str) -> HttpResponse:
    """POST: store the payment, answer the form that carries the shopper to CMI."""
    order = get_object_or_404(Order, number=number, status=Order.NEW)
    payment, signed = services.create_payment(
        platform=PLATFORM,
        reference=order.number,
        order={
            "amount": order.amount,
            "email": order.email,
            "billing_name": order.email,
            "ok_url": request.build_absolute_uri(reverse("cmi_reference:ok")),
            "fail_url": request.build_absolute_uri(reverse("cmi_reference:fail")),
        },
    )
    return redirect_form_response(signed, lang=payment.lang)


class BackFromCMI(ReturnView):
    """CMI's okUrl / failUrl POST: verified by the shared layer, then 303 to the order."""

    def get_redirect_url(self, outcome: services.ReturnOutcome) -> str | None:
        if outcome.payment is None or outcome.payment.platform != PLATFORM:
            return None  # the shared "we could not confirm this payment" page
        token = TOKENS.sign(outcome.payment.oid)
        return reverse("cmi_reference:order", args=[token])


def order_page(request: HttpRequest, token: str) -> HttpResponse:
    """GET: the order's status, for whoever CMI sent back (the token proves it)."""
    oid = (TOKENS.read(token) or {}).get("o", "")
    payment = get_object_or_404(Payment, oid=oid, platform=PLATFORM)
    order = get_object_or_404(Order, number=payment.reference)
    return HttpResponse(f"Order {order.number}: {order.status}", content_type="text/plain")
