"""``cmi_oscar.dashboard.apps.CMIDashboardConfig``: an Oscar dashboard app (staff only).

Include its URLs before Oscar's (``path("dashboard/cmi/", apps.get_app_config(
"cmi_oscar_dashboard").urls)``) and add the menu entry to ``OSCAR_DASHBOARD_NAVIGATION``
(``"url_name": "cmi_oscar_dashboard:cmi-payment-list"``); see docs/oscar.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.urls import path
from django.utils.translation import gettext_lazy as _
from oscar.core.application import OscarDashboardConfig


class CMIDashboardConfig(OscarDashboardConfig):
    name = "cmi_oscar.dashboard"
    label = "cmi_oscar_dashboard"
    namespace = "cmi_oscar_dashboard"
    verbose_name = _("CMI payments dashboard")
    default_permissions: ClassVar[list[str]] = ["is_staff"]

    def get_urls(self) -> list[Any]:
        from cmi_oscar.dashboard import views

        urls = [
            path("", views.PaymentListView.as_view(), name="cmi-payment-list"),
            path("<int:pk>/", views.PaymentDetailView.as_view(), name="cmi-payment-detail"),
            path(
                "<int:pk>/<str:action>/",
                views.PaymentActionView.as_view(),
                name="cmi-payment-action",
            ),
        ]
        return self.post_process_urls(urls)
