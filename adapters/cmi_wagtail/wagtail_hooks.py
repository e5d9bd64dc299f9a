"""Wagtail admin registration: the payments viewset (the settings register themselves)."""

from __future__ import annotations

from django.urls import path
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
