"""WSGI entry point of the demo shop."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oscar_shop.settings")
application = get_wsgi_application()
