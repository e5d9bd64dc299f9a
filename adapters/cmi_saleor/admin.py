"""Django admin: installations (read-only secrets), channel configurations, transactions
and the reports still owed to Saleor (read-only)."""

from __future__ import annotations

from typing import Any

from cmi_django.crypto import DecryptionError
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from cmi_saleor.forms import SECRETS, ChannelConfigurationForm, mask
from cmi_saleor.models import (
    ChannelConfiguration,
    EventReport,
    SaleorInstallation,
    TransactionMap,
)


class ChannelInline(admin.TabularInline):
    model = ChannelConfiguration
    fields = ("channel", "enabled", "client_id", "capture_mode", "environment")
    readonly_fields = fields
    extra = 0
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[ChannelConfiguration]:
        return super().get_queryset(request).defer(*SECRETS)  # not shown: not decrypted


@admin.register(SaleorInstallation)
class SaleorInstallationAdmin(admin.ModelAdmin):
    list_display = ("saleor_api_url", "app_id", "updated")
    fields = ("saleor_api_url", "app_id", "token_masked", "jwks_fetched_at", "created", "updated")
    readonly_fields = fields
    inlines = (ChannelInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[SaleorInstallation]:
        return super().get_queryset(request).defer("token")  # read by token_masked only

    @admin.display(description="token")
    def token_masked(self, obj: SaleorInstallation) -> str:
        try:
            return mask(obj.token)
        except DecryptionError as exc:
            return f"cannot be decrypted with the current {exc.setting}: install the app again"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # installations come from Saleor's register call


@admin.register(ChannelConfiguration)
class ChannelConfigurationAdmin(admin.ModelAdmin):
    form = ChannelConfigurationForm
    list_display = (
        "channel",
        "installation",
        "enabled",
        "client_id",
        "capture_mode",
        "environment",
    )
    list_filter = ("enabled", "capture_mode", "environment")
    search_fields = ("channel", "client_id")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ChannelConfiguration]:
        # Secrets are read by the form only (which asks again for any it cannot decrypt);
        # the installation's token never.
        return (
            super()
            .get_queryset(request)
            .select_related("installation")
            .defer(*SECRETS, "installation__token")
        )


@admin.register(TransactionMap)
class TransactionMapAdmin(admin.ModelAdmin):
    list_display = ("oid", "transaction_id", "channel", "saleor_api_url", "created")
    search_fields = ("oid", "transaction_id", "merchant_reference")
    readonly_fields = tuple(f.name for f in TransactionMap._meta.fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(EventReport)
class EventReportAdmin(admin.ModelAdmin):
    """What Saleor is still owed, with the reason (``manage.py cmi_saleor_reports`` sends
    it; a report Saleor recorded is deleted)."""

    list_display = ("mapping", "event_type", "created", "attempts", "last_error")
    list_filter = ("event_type",)
    search_fields = ("mapping__oid", "mapping__transaction_id")
    readonly_fields = tuple(f.name for f in EventReport._meta.fields)
    list_select_related = ("mapping",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[EventReport]:
        return super().get_queryset(request).select_related("mapping")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
