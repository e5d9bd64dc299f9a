from __future__ import annotations

from django.apps import AppConfig


class ReferenceConfig(AppConfig):
    name = "tests.adapters.django.reference"
    label = "cmi_reference"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cmi_django.hooks import register_hook

        from .hooks import PLATFORM, ShopHook

        register_hook(PLATFORM, ShopHook())
