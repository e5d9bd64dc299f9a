"""Django application configuration: registers the Saleor hook, config resolver and
cache invalidation."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class CMISaleorConfig(AppConfig):
    name = "cmi_saleor"
    label = "cmi_saleor"
    verbose_name = "CMI for Saleor"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cmi_django.config import register_config_resolver
        from cmi_django.hooks import register_hook

        from cmi_saleor import cache
        from cmi_saleor.checks import check_saleor
        from cmi_saleor.hooks import SaleorHook
        from cmi_saleor.models import resolve_config

        register_hook("saleor", SaleorHook())
        register_config_resolver("saleor", resolve_config)
        cache.connect()
        checks.register(check_saleor)
