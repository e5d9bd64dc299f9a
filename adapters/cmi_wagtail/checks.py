"""System checks of the Wagtail adapter (see :mod:`cmi_django.checks`).

- ``cmi_wagtail.E001``: ``cmi_wagtail.urls`` (CMI's callback, guide §4.2, and the
  shopper's returns) is not mounted.
"""

from __future__ import annotations

from typing import Any

from cmi_django.checks import callback_unmounted
from django.core import checks

__all__ = ["check_wagtail"]


def check_wagtail(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001 above."""
    return callback_unmounted("cmi_wagtail:callback", "cmi_wagtail.E001", "cmi_wagtail.urls")
