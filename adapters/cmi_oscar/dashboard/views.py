"""Dashboard views: CMI payments of Oscar orders, and the staff operations on them.

Thin: the list and detail read ``cmi_django``'s records; each button POSTs to
:class:`PaymentActionView`, which runs :func:`cmi_django.actions.staff_action` (the state
machine is consulted before CMI is called; each rendered form carries a fresh idempotency
key, so a form sent twice is one operation) and tells staff what happened, CMI's refusals
included. The Oscar order follows through the hook (:mod:`cmi_oscar.hooks`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cmi_django.actions import posted_staff_action
from cmi_django.dashboard import action_context
from cmi_django.listing import BoundedPaginator, KeptDrawings, cell_text, clear_all
from cmi_django.models import CallbackLog, Payment
from cmi_django.templatetags.cmi_money import money, state_label
from django.contrib import messages
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.template.loader import get_template
from django.urls import get_script_prefix, reverse
from django.utils.autoreload import file_changed
from django.utils.decorators import method_decorator
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from django.views import View
from django.views.generic import DetailView, ListView
from oscar.core.loading import get_model

from cmi_oscar.dashboard.chrome import navigation
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
        if FAST and _template_is_ours(self.template_name):
            context["cmi_filters"] = _filters(self.form, self.request)
            context["cmi_rows"] = _rows(context["payments"])
            context["cmi_navigation"] = navigation(self.request.user)
        return context


#: The list's filters and rows drawn in Python (below); False draws them with the
#: template's loops (the tests compare the two).
FAST = True
_TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / PaymentListView.template_name
_KEPT = 512
#: Filters drawn, keyed by every value their drawing reads (at most _KEPT, then dropped).
_drawn_filters: KeptDrawings[str] = KeptDrawings(_KEPT)


@receiver(file_changed, dispatch_uid="cmi_oscar_dashboard_templates")
def forget_templates(sender: Any, file_path: Any, **kwargs: Any) -> None:
    """A template changed while the development server runs (Django's autoreloader then
    resets the template loaders instead of restarting): the navigation bar's block read
    from ``layout.html`` (kept with the menus) and every kept drawing are forgotten, so
    that a site's template edited meanwhile is checked, and drawn, on the next page."""
    if getattr(file_path, "suffix", "") == ".py":
        return  # the server restarts
    clear_all()


def _template_is_ours(name: str) -> bool:
    """True while the engine finds this app's own list template (not a site's)."""
    origin = getattr(get_template(name), "origin", None)
    return origin is not None and Path(str(origin.name)).resolve() == _TEMPLATE


def _filters(form: PaymentSearchForm, request: HttpRequest) -> SafeString:
    """What the template's ``{% for field in form %}`` loop draws.

    The filter form's markup depends only on the language (labels, choices, the date
    inputs' format), whether the form is bound and the four fields' submitted values: the
    drawing is kept under those.
    """
    data = request.GET
    key = (
        get_language(),
        bool(data),
        *(tuple(data.getlist(name)) for name in form.fields),
        get_script_prefix(),
    )
    drawn = _drawn_filters.get(key)
    if drawn is None:
        drawn = _drawn_filters.keep(
            key,
            "".join(
                '\n                <div class="form-group mr-2">'
                f"{cell_text(field.label_tag())} {cell_text(field)}</div>\n            "
                for field in form
            ),
        )
    return mark_safe(drawn)  # noqa: S308 (drawn by Django's form renderer, escaped by cell_text)


_BADGES = {"needs_attention": "danger", "captured": "success", "authorised": "success"}
_PK = 918273645546372819


def _rows(payments: Any) -> SafeString:
    """What the template's ``{% for payment in payments %}`` loop draws, row for row."""
    detail = reverse("cmi_oscar_dashboard:cmi-payment-detail", args=[_PK])
    before, after = (conditional_escape(part) for part in detail.split(str(_PK)))
    amounts: dict[tuple[Any, Any], str] = {}

    def amount(value: Any, currency: Any) -> str:
        key = (value, currency)
        if key not in amounts:
            amounts[key] = cell_text(money(value, currency))
        return amounts[key]

    rows = []
    for payment in payments:
        reference = cell_text(payment.reference)
        if payment.has_order:
            url = conditional_escape(
                reverse("dashboard:order-detail", kwargs={"number": payment.reference})
            )
            order = f'<bdi dir="ltr"><a href="{url}">{reference}</a></bdi>'
        else:
            order = f'<bdi dir="ltr">{reference}</bdi>'
        currency = payment.currency
        rows.append(
            "\n            <tr>\n"
            f'                <td><bdi dir="ltr"><a href="{before}{payment.pk}{after}">'
            f"{cell_text(payment.oid)}</a></bdi></td>\n"
            f"                <td>{order}</td>\n"
            f'                <td><bdi dir="ltr">{amount(payment.amount, currency)}</bdi></td>\n'
            '                <td><span class="badge badge-'
            f'{_BADGES.get(payment.state, "secondary")}">'
            f"{cell_text(state_label(payment.state))}</span></td>\n"
            f'                <td><bdi dir="ltr">{amount(payment.captured_amount, currency)}'
            "</bdi></td>\n"
            f'                <td><bdi dir="ltr">{amount(payment.refunded_amount, currency)}'
            "</bdi></td>\n"
            f"                <td>{cell_text(payment.card_brand)} "
            f'<bdi dir="ltr">{cell_text(payment.masked_pan)}</bdi></td>\n'
            f"                <td>{cell_text(payment.created_at)}</td>\n"
            "            </tr>\n        "
        )
    return mark_safe("".join(rows))  # noqa: S308 (every value escaped by cell_text)


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
