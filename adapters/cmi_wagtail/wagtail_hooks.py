"""Wagtail admin registration: the payments viewset (the settings register themselves)."""

from __future__ import annotations

from django.templatetags.static import static
from django.urls import path
from django.utils.html import format_html
from wagtail import hooks

from cmi_wagtail.credentials import credentials_test_view
from cmi_wagtail.viewsets import PaymentViewSet


@hooks.register("register_admin_viewset")
def register_payment_viewset() -> PaymentViewSet:
    return PaymentViewSet()


@hooks.register("register_admin_urls")
def register_credentials_test() -> list[object]:
    """The settings page's "Test the credentials" button posts here."""
    return [
        path(
            "cmi_payments/test-credentials/<int:site_id>/",
            credentials_test_view,
            name="cmi_wagtail_test_credentials",
        )
    ]


@hooks.register("insert_editor_js")
def amount_rule_js() -> str:
    """The payment page editor shows the amount fields of the chosen rule only."""
    return format_html('<script src="{}"></script>', static("cmi_wagtail/amount_rule.js"))
