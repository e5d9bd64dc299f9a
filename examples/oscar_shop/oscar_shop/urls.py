"""The demo shop's URLs: CMI's receivers and dashboard section before Oscar's own."""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("cmi/", include("cmi_oscar.urls")),
    path("dashboard/cmi/", apps.get_app_config("cmi_oscar_dashboard").urls),
    path("", include(apps.get_app_config("oscar").urls[0])),
    *static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT),
]
