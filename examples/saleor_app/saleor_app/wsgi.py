"""WSGI entry point (``gunicorn saleor_app.wsgi`` from ``examples/saleor_app``)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saleor_app.settings")
application = get_wsgi_application()
