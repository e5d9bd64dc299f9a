"""``path("cmi/", include("cmi_oscar.urls"))``: CMI's callback and the shopper's returns.

Names (namespace ``cmi_oscar``): ``callback`` (CMI's server-to-server POST), ``ok`` and
``fail`` (the shopper's POSTs from CMI's page), ``return`` and ``failed`` (the GET pages
they redirect to), ``cancel`` (CMI's ``shopurl``, the Cancel link on its page) and
``unconfirmed`` (where okUrl/failUrl POSTs that fail verification are sent: it shows no
payment).
"""

from __future__ import annotations

from cmi_django.views import UnconfirmedView, callback_view
from django.urls import path

from cmi_oscar import views

app_name = "cmi_oscar"
urlpatterns = [
    path("callback/", callback_view, name="callback"),
    path("ok/", views.OkReturnView.as_view(), name="ok"),
    path("fail/", views.FailReturnView.as_view(), name="fail"),
    path("return/<str:token>/", views.ReturnPageView.as_view(), name="return"),
    path("failed/<str:token>/", views.FailPageView.as_view(), name="failed"),
    path("cancel/<str:token>/", views.CancelView.as_view(), name="cancel"),
    path("unconfirmed/", UnconfirmedView.as_view(), name="unconfirmed"),
]
