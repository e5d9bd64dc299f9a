"""The test site's URLs: cmi_wagtail's endpoints BEFORE Wagtail's page serving."""

from __future__ import annotations

from django.urls import include, path
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls

urlpatterns = [
    path("admin/", include(wagtailadmin_urls)),
    path("cmi/", include("cmi_wagtail.urls")),
    path("", include(wagtail_urls)),
]
