"""Django settings for mypy's django-stubs plugin only: every adapter's apps at once.

``[tool.mypy.plugins.django-stubs]`` in pyproject.toml names this module, so the plugin
knows the models of Oscar, Saleor and Wagtail together (the tests run each platform
under its own settings; nothing runs under these).
"""

from __future__ import annotations

from tests.adapters.oscar.settings import *  # noqa: F403 - Oscar's settings, then more apps
from tests.adapters.oscar.settings import INSTALLED_APPS as OSCAR_APPS
from tests.adapters.wagtail.settings import INSTALLED_APPS as WAGTAIL_APPS

INSTALLED_APPS = [
    *OSCAR_APPS,
    *(app for app in WAGTAIL_APPS if app not in OSCAR_APPS),
    "cmi_saleor",
]
