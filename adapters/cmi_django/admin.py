"""Read-only Django admin for payments, callbacks and operations (changes go through CMI)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from cmi_django.models import CallbackLog, Operation, Payment


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


@admin.register(Payment)
class PaymentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("oid", "platform", "reference", "amount", "currency", "state", "created_at")
    list_filter = ("state", "platform", "capture_mode", "config_key")
    search_fields = ("oid", "reference", "email", "trans_id")
    date_hierarchy = "created_at"
    inlines = (CallbackInline, OperationInline)


@admin.register(CallbackLog)
class CallbackLogAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("created_at", "kind", "oid", "verified", "outcome", "reply", "remote_addr")
    list_filter = ("kind", "verified", "outcome")
    search_fields = ("oid",)


@admin.register(Operation)
class OperationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("created_at", "kind", "payment", "amount", "state", "user")
    list_filter = ("kind", "succeeded")
    search_fields = ("payment__oid", "key")
