"""Wagtail admin registration: the payments viewset (the settings register themselves)."""

from __future__ import annotations

from wagtail import hooks

from cmi_wagtail.viewsets import PaymentViewSet


@hooks.register("register_admin_viewset")
def register_payment_viewset() -> PaymentViewSet:
    return PaymentViewSet()
