"""Dashboard views: CMI payments of Oscar orders, and the staff operations on them.

Thin: the list and detail read ``cmi_django``'s records; each button POSTs to
:class:`PaymentActionView`, which calls ``cmi_django.services`` (the state machine is
consulted before CMI is called) and tells staff what CMI answered, its refusals
included. The Oscar order follows through the hook (:mod:`cmi_oscar.hooks`).
"""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal
from typing import Any, ClassVar

from cmi_django import services
from cmi_django.models import CallbackLog, Payment
from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import DetailView, ListView

from cmi_core import APIError, EventType, PaymentState, TransitionError, merchant_message
from cmi_core.states import allowed_events
from cmi_oscar.dashboard.forms import AmountForm, PaymentSearchForm
from cmi_oscar.placement import find_order

logger = logging.getLogger("cmi_oscar")

__all__ = ["PaymentActionView", "PaymentDetailView", "PaymentListView"]

PLATFORM = "oscar"


def _payments() -> Any:
    return Payment.objects.filter(platform=PLATFORM)


class PaymentListView(ListView):
    template_name = "cmi_oscar/dashboard/payment_list.html"
    context_object_name = "payments"
    paginate_by = 25

    def get_queryset(self) -> Any:
        self.form = PaymentSearchForm(self.request.GET or None)
        return self.form.filter(_payments()).order_by("-created_at", "-id")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["form"] = self.form
        return context


class PaymentDetailView(DetailView):
    template_name = "cmi_oscar/dashboard/payment_detail.html"
    context_object_name = "payment"

    def get_queryset(self) -> Any:
        return _payments()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        payment: Payment = self.object
        status = payment.status
        allowed = allowed_events(status.state)
        context.update(
            {
                "order": find_order(payment),
                "attempts": _payments()
                .filter(reference=payment.reference)
                .order_by("created_at", "id"),
                "callbacks": CallbackLog.objects.filter(oid=payment.oid).order_by(
                    "created_at", "id"
                ),
                "operations": payment.operations.order_by("created_at", "id"),
                "can_capture": EventType.CAPTURE in allowed,
                "can_void": EventType.VOID in allowed,
                "can_refund": EventType.REFUND in allowed and status.refundable > 0,
                "capturable": status.capturable,
                "refundable": status.refundable,
                "error_text": merchant_message(payment.proc_return_code, payment.error_code)
                if payment.proc_return_code and payment.proc_return_code != "00"
                else "",
                "action_key": uuid.uuid4().hex,
            }
        )
        return context


class PaymentActionView(View):
    """POST ``capture``, ``void``, ``refund`` (``amount``; empty: all) or ``refresh``."""

    http_method_names: ClassVar[list[str]] = ["post"]
    actions = ("capture", "void", "refund", "refresh")

    def post(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        payment = get_object_or_404(_payments(), pk=pk)
        url = reverse("cmi_oscar_dashboard:cmi-payment-detail", args=[payment.pk])
        if action not in self.actions:
            messages.error(request, _("Unknown action."))
            return HttpResponseRedirect(url)
        form = AmountForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Enter a valid amount."))
            return HttpResponseRedirect(url)
        amount: Decimal | None = form.cleaned_data.get("amount")
        user = request.user.get_username()
        key = (request.POST.get("key") or "")[:100] or None
        try:
            self.run(payment, action, amount, user=user, key=key)
        except TransitionError as exc:
            messages.error(request, _("Not possible now: %(reason)s") % {"reason": exc.reason})
        except APIError as exc:
            messages.error(request, _("CMI refused: %(message)s") % {"message": _api_text(exc)})
        except ImproperlyConfigured as exc:
            messages.error(request, str(exc))
        except Exception as exc:
            logger.exception("CMI %s of %s: the Oscar order was not updated", action, payment.oid)
            messages.warning(
                request,
                _("CMI accepted, but the order could not be updated: %(error)s")
                % {"error": f"{type(exc).__name__}: {exc}"},
            )
        else:
            payment.refresh_from_db()
            messages.success(
                request,
                _("%(action)s done: the payment is now %(state)s.")
                % {"action": action.capitalize(), "state": PaymentState(payment.state).value},
            )
        return HttpResponseRedirect(url)

    @staticmethod
    def run(
        payment: Payment, action: str, amount: Decimal | None, *, user: str, key: str | None
    ) -> None:
        if action == "capture":
            services.capture(payment, amount, user=user, key=key)
        elif action == "void":
            services.void(payment, user=user, key=key)
        elif action == "refund":
            services.refund(payment, amount or payment.status.refundable, user=user, key=key)
        else:
            services.refresh(payment, user=user)


def _api_text(exc: APIError) -> str:
    """CMI's own words: its ErrMsg, with the code when there is one."""
    parts = [exc.err_msg or str(exc)]
    if exc.error_code:
        parts.append(f"({exc.error_code})")
    return " ".join(parts)
