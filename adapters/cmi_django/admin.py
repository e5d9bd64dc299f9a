"""Read-only Django admin for payments, callbacks and operations (changes go through CMI).

The three lists stay fast at any table size (:mod:`cmi_django.listing`): a bounded count
("more than 10 000" past the limit: the app's ``pagination.html`` and
``search_form.html``), no full count, filter choices found through an index, each page one
range of an index (migrations 0004 and 0005), no date hierarchy (its year list is a
``DISTINCT`` over every payment; the date filter offers ranges instead).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from cmi_django.i18n import log_kind_label, operation_kind_label, outcome_label, state_label
from cmi_django.listing import BoundedPaginator, distinct_values
from cmi_django.models import CallbackLog, Operation, Payment


@admin.display(description=_("state"), ordering="state")
def payment_state(obj: Payment) -> str:
    """The payment's state in the staff member's language (the log's values below too)."""
    return state_label(obj.state)


@admin.display(description=_("kind"), ordering="kind")
def log_kind(obj: CallbackLog) -> str:
    return log_kind_label(obj.kind)


@admin.display(description=_("outcome"), ordering="outcome")
def outcome(obj: CallbackLog) -> str:
    return outcome_label(obj.outcome)


@admin.display(description=_("kind"), ordering="kind")
def operation_kind(obj: Operation) -> str:
    return operation_kind_label(obj.kind)


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CallbackInline(ReadOnlyMixin, admin.TabularInline):
    model = CallbackLog
    fields = ("created_at", "kind", "verified", "outcome", "reply", "error", "remote_addr")
    readonly_fields = fields
    extra = 0


class OperationInline(ReadOnlyMixin, admin.TabularInline):
    model = Operation
    fields = ("created_at", "kind", "amount", "state", "key", "error", "user")
    readonly_fields = fields
    extra = 0


class IndexedValuesFilter(admin.SimpleListFilter):
    """A filter on a column's values, its choices read through the column's index."""

    field = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        values = distinct_values(model_admin.model._default_manager.all(), self.field)
        return [(value, self.label(value)) for value in values]

    def label(self, value: str) -> str:
        """What staff read for ``value`` (the value itself unless a subclass translates it)."""
        return value

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        # Only a value the filter offers reaches the database (a NUL byte, say, would
        # make PostgreSQL fail the request); any other lists nothing.
        if value not in {choice for choice, _ in self.lookup_choices}:
            return queryset.none()
        return queryset.filter(**{self.field: value})


class PlatformFilter(IndexedValuesFilter):
    title = _("platform")
    parameter_name = field = "platform"


class ConfigKeyFilter(IndexedValuesFilter):
    title = _("configuration")
    parameter_name = field = "config_key"


class OutcomeFilter(IndexedValuesFilter):
    """A callback's outcome, its choices walked through the outcome index (migration 0005),
    where Django's own filter for a free-text field reads every callback (``DISTINCT``)."""

    title = _("outcome")
    parameter_name = field = "outcome"

    def label(self, value: str) -> str:
        return outcome_label(value)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "oid",
        "platform",
        "reference",
        "amount",
        "currency",
        payment_state,
        "created_at",
    )
    list_filter = (
        "state",
        PlatformFilter,
        "capture_mode",
        ConfigKeyFilter,
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("oid", "reference", "email", "trans_id")
    inlines = (CallbackInline, OperationInline)
    paginator = BoundedPaginator
    show_full_result_count = False
    list_per_page = 50  # 100 rows took ~20 ms to render, the database ~2 ms
    #: The columns the list reads while it shows :attr:`list_display` (its cells and the
    #: state's label): a payment's JSON fields and twenty other columns stay unread
    #: (0.7 ms of a page's CPU at 50 rows).
    list_reads = ("id", "oid", "platform", "reference", "amount", "currency", "state", "created_at")

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        """Django's list (the rows drawn by ``admin/cmi_django/payment/change_list.html``'s
        tag, :mod:`cmi_django.templatetags.cmi_admin_list`), reading :attr:`list_reads`."""
        request.cmi_payment_list = True  # type: ignore[attr-defined]
        return super().changelist_view(request, extra_context)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        # Only for the list, and only while it shows these columns (a subclass showing
        # others reads every column, as Django does); the detail page reads them all.
        if getattr(request, "cmi_payment_list", False) and tuple(
            self.get_list_display(request)
        ) == tuple(PaymentAdmin.list_display):
            return queryset.only(*self.list_reads)
        return queryset


@admin.register(CallbackLog)
class CallbackLogAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("created_at", log_kind, "oid", "verified", outcome, "reply", "remote_addr")
    list_filter = ("kind", "verified", OutcomeFilter)
    search_fields = ("oid",)
    paginator = BoundedPaginator
    show_full_result_count = False
    list_per_page = 50  # as the payments': Django's 100 rows took ~25 ms of CPU to render


@admin.register(Operation)
class OperationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("created_at", operation_kind, "payment", "amount", "state", "user")
    list_filter = ("kind", "succeeded")
    search_fields = ("payment__oid", "key")
    paginator = BoundedPaginator
    show_full_result_count = False
    list_per_page = 50
