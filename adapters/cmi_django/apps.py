"""Django application configuration for the shared CMI layer."""

from __future__ import annotations

from django.apps import AppConfig


class CMIDjangoConfig(AppConfig):
    name = "cmi_django"
    label = "cmi_django"
    verbose_name = "CMI payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cmi_django import checks  # noqa: F401 - registers the system checks
