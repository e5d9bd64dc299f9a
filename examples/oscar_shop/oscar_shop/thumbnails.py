"""A thumbnailer that serves images as they are, so the demo needs no sorl-thumbnail."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from oscar.core.thumbnails import AbstractThumbnailer


class _Image:
    def __init__(self, url: str) -> None:
        self.url = url


class PlainThumbnailer(AbstractThumbnailer):
    def generate_thumbnail(self, source: Any, **opts: Any) -> _Image:
        url = getattr(source, "url", None)
        if not url:
            url = f"{settings.STATIC_URL}oscar/img/image_not_found.jpg"
        return _Image(url)

    def delete_thumbnails(self, source: Any) -> None:
        return None
