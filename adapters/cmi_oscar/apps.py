"""The Oscar adapter's Django application: registers its payment hook when ready."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _


class CMIOscarConfig(AppConfig):
    name = "cmi_oscar"
    label = "cmi_oscar"
    verbose_name = _("CMI payments for Oscar")

    def ready(self) -> None:
        from cmi_django.hooks import register_hook

        from cmi_oscar.checks import check_oscar
        from cmi_oscar.hooks import OscarPaymentHook

        register_hook("oscar", OscarPaymentHook())
        checks.register(check_oscar)
