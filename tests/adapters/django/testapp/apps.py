from __future__ import annotations

from django.apps import AppConfig


class TestAppConfig(AppConfig):
    name = "tests.adapters.django.testapp"
    label = "cmi_testapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cmi_django.hooks import register_hook

        from .hooks import RecordingHook

        register_hook("test", RecordingHook())
