"""URLs: ``path("cmi/", include("cmi_django.urls"))`` serves ``cmi/callback/``.

The name is ``cmi_django:callback``.
"""

from __future__ import annotations

from django.urls import path

from cmi_django.views import callback_view

app_name = "cmi_django"
urlpatterns = [path("callback/", callback_view, name="callback")]
