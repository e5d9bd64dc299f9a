"""Dashboard views: CMI payments of Oscar orders, and the staff operations on them.

Thin: the list and detail read ``cmi_django``'s records; each button POSTs to
:class:`PaymentActionView`, which runs :func:`cmi_django.actions.staff_action` (the state
machine is consulted before CMI is called; each rendered form carries a fresh idempotency
key, so a form sent twice is one operation) and tells staff what happened, CMI's refusals
included. The Oscar order follows through the hook (:mod:`cmi_oscar.hooks`).
"""

from __future__ import annotations

from typing import Any

from cmi_django.actions import posted_staff_action
from cmi_django.dashboard import action_context
from cmi_django.listing import BoundedPaginator
from cmi_django.models import CallbackLog, Payment
from django.contrib import messages
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.generic import DetailView, ListView
from oscar.core.loading import get_model

from cmi_oscar.dashboard.forms import PaymentSearchForm
from cmi_oscar.placement import find_order

__all__ = ["PaymentActionView", "PaymentDetailView", "PaymentListView"]

PLATFORM = "oscar"


def _payments() -> Any:
    return Payment.objects.filter(platform=PLATFORM)


class PaymentListView(ListView):
    template_name = "cmi_oscar/dashboard/payment_list.html"
    context_object_name = "payments"
    paginate_by = 25
    # Counts at most CMI_STAFF_LIST_LIMIT payments: no COUNT(*) over the whole table.
    paginator_class = BoundedPaginator

    def get_queryset(self) -> Any:
        self.form = PaymentSearchForm(self.request.GET or None)
        orders = get_model("order", "Order")._default_manager.filter(number=OuterRef("reference"))
        return (
            self.form.filter(_payments())
            .annotate(has_order=Exists(orders))
            .order_by("-created_at", "-id")
        )

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
        context.update(action_context(payment))
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
            }
        )
        return context


# CMI may be called: never inside ATOMIC_REQUESTS' transaction (docs/django-layer.md)
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class PaymentActionView(View):
    """POST ``capture``, ``void``, ``refund`` (``amount``) or ``refresh``.

    A void, or a refund of everything still refundable, first answers a confirmation page
    saying what will happen (the amount as money); its button posts the same form again
    with ``confirmed=1``.
    """

    http_method_names = ("post",)

    def post(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        payment = get_object_or_404(_payments(), pk=pk)
        result = posted_staff_action(request, payment, action)
        if result.confirm:
            return render(
                request,
                "cmi_oscar/dashboard/payment_confirm.html",
                {
                    "payment": payment,
                    "action": action,
                    "text": result.confirm,
                    "amount": request.POST.get("amount", ""),
                    "key": request.POST.get("key", ""),
                },
            )
        (messages.success if result.ok else messages.error)(request, result.message)
        url = reverse("cmi_oscar_dashboard:cmi-payment-detail", args=[payment.pk])
        return HttpResponseRedirect(url)
