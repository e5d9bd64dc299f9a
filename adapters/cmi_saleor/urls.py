"""``path("", include("cmi_saleor.urls"))``: every path answers with or without a final slash.

Saleor never follows redirects, so no path here relies on ``APPEND_SLASH``.
"""

from __future__ import annotations

from django.urls import re_path

from cmi_saleor import dashboard, views

app_name = "cmi_saleor"
urlpatterns = [
    re_path(r"^api/manifest/?$", views.manifest, name="manifest"),
    re_path(r"^api/register/?$", views.register, name="register"),
    re_path(r"^api/webhooks/(?P<event>[a-z-]+)/?$", views.webhook, name="webhook"),
    re_path(r"^cmi/callback/?$", views.callback, name="callback"),
    re_path(r"^cmi/(?P<kind>ok|fail)/?$", views.return_view, name="return"),
    re_path(r"^app/?$", dashboard.configuration_page, name="configuration"),
    re_path(r"^app/api/configuration/?$", dashboard.configuration_api, name="configuration_api"),
    re_path(r"^health/?$", views.health, name="health"),
]
