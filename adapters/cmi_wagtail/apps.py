"""Django application configuration: registers the platform hook and the config resolver."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _


class CMIWagtailConfig(AppConfig):
    name = "cmi_wagtail"
    label = "cmi_wagtail"
    verbose_name = _("CMI payments for Wagtail")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cmi_django.config import register_config_resolver
        from cmi_django.hooks import register_hook

        from cmi_wagtail.checks import check_wagtail
        from cmi_wagtail.config import PLATFORM, PREFIX, config_for_site
        from cmi_wagtail.hooks import WagtailHook

        register_config_resolver(PREFIX, config_for_site)
        register_hook(PLATFORM, WagtailHook())
        checks.register(check_wagtail)
