"""Django admin: installations (read-only secrets) and channel configurations."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from cmi_saleor.forms import ChannelConfigurationForm, mask
from cmi_saleor.models import ChannelConfiguration, SaleorInstallation, TransactionMap


class ChannelInline(admin.TabularInline):
    model = ChannelConfiguration
    fields = ("channel", "enabled", "client_id", "capture_mode", "environment")
    readonly_fields = fields
    extra = 0
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SaleorInstallation)
class SaleorInstallationAdmin(admin.ModelAdmin):
    list_display = ("saleor_api_url", "app_id", "updated")
    fields = ("saleor_api_url", "app_id", "token_masked", "jwks_fetched_at", "created", "updated")
    readonly_fields = fields
    inlines = (ChannelInline,)

    @admin.display(description="token")
    def token_masked(self, obj: SaleorInstallation) -> str:
        return mask(obj.token)

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


@admin.register(TransactionMap)
class TransactionMapAdmin(admin.ModelAdmin):
    list_display = ("oid", "transaction_id", "channel", "saleor_api_url", "created")
    search_fields = ("oid", "transaction_id", "merchant_reference")
    readonly_fields = tuple(f.name for f in TransactionMap._meta.fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
