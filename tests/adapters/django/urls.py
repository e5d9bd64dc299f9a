from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from tests.adapters.django.testapp.views import FailView, OkView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("cmi/", include("cmi_django.urls")),
    path("cmi/ok/", OkView.as_view(), name="ok"),
    path("cmi/fail/", FailView.as_view(), name="fail"),
    path("shop/", include("tests.adapters.django.reference.urls")),
]
