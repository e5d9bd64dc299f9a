"""The demo shop's own app: only its management command and thumbnailer."""

from __future__ import annotations

from django.apps import AppConfig


class OscarShopConfig(AppConfig):
    name = "oscar_shop"
    label = "oscar_shop"
    verbose_name = "Oscar demo shop"
