"""The endpoints CMI and the shopper's browser POST to, outside Wagtail's page serving.

Include them BEFORE ``wagtail_urls`` (which would otherwise take the path as a page)::

    urlpatterns = [
        path("admin/", include(wagtailadmin_urls)),
        path("cmi/", include("cmi_wagtail.urls")),
        path("", include(wagtail_urls)),
    ]

``cmi/callback/`` (CMI's server-to-server callback), ``cmi/ok/`` and ``cmi/fail/`` (the
shopper's return, CSRF-exempt), ``cmi/pay/`` (pay buttons with no payment page) and
``cmi/result/`` (their result), ``cmi/unconfirmed/`` (where okUrl/failUrl POSTs that fail
verification are sent: it shows no payment).
"""

from __future__ import annotations

from cmi_django.views import UnconfirmedView
from django.urls import path

from cmi_wagtail import views

app_name = "cmi_wagtail"
urlpatterns = [
    path("callback/", views.callback_view, name="callback"),
    path("ok/", views.ReturnView.as_view(kind="ok"), name="ok"),
    path("fail/", views.ReturnView.as_view(kind="fail"), name="fail"),
    path("pay/", views.CheckoutView.as_view(), name="checkout"),
    path("result/", views.ResultView.as_view(), name="result"),
    path("unconfirmed/", UnconfirmedView.as_view(), name="unconfirmed"),
]
