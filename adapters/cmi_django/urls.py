"""URLs: ``path("cmi/", include("cmi_django.urls"))`` serves ``cmi/callback/``.

The names are ``cmi_django:callback`` and ``cmi_django:unconfirmed`` (the neutral page
unverified okUrl/failUrl POSTs are sent to).
"""

from __future__ import annotations

from django.urls import path

from cmi_django.views import UnconfirmedView, callback_view

app_name = "cmi_django"
urlpatterns = [
    path("callback/", callback_view, name="callback"),
    path("unconfirmed/", UnconfirmedView.as_view(), name="unconfirmed"),
]
