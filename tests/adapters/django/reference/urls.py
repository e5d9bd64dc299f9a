from __future__ import annotations

from django.urls import path

from . import views

app_name = "cmi_reference"
urlpatterns = [
    path("pay/<str:number>/", views.pay, name="pay"),
    path("ok/", views.BackFromCMI.as_view(kind="ok"), name="ok"),
    path("fail/", views.BackFromCMI.as_view(kind="fail"), name="fail"),
    path("order/<str:token>/", views.order_page, name="order"),
]
