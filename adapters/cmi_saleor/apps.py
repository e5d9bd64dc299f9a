"""Django application configuration: registers the Saleor hook, config resolver, cache
invalidation and the resolution of pending requests once their operation settles."""

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
        from cmi_django.inbound import register_callback_read
        from cmi_django.models import Operation
        from django.db.models.signals import post_save

        from cmi_saleor import cache
        from cmi_saleor.checks import check_saleor
        from cmi_saleor.hooks import SaleorHook, callback_read, on_operation_saved
        from cmi_saleor.models import joined_config, resolve_config

        register_hook("saleor", SaleorHook())
        post_save.connect(
            on_operation_saved, sender=Operation, dispatch_uid="cmi_saleor_pending_requests"
        )
        register_config_resolver("saleor", resolve_config, joined=joined_config)
        register_callback_read("saleor", callback_read)
        cache.connect()
        checks.register(check_saleor)
