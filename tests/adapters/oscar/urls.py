"""URLs of the Oscar adapter's tests: as docs/oscar.md tells a shop to write them."""

from __future__ import annotations

from django.apps import apps
from django.urls import include, path

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("cmi/", include("cmi_oscar.urls")),
    path("dashboard/cmi/", apps.get_app_config("cmi_oscar_dashboard").urls),
    path("", include(apps.get_app_config("oscar").urls[0])),
]
