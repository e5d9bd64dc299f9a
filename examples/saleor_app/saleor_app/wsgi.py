"""WSGI entry point (``gunicorn saleor_app.wsgi`` from ``examples/saleor_app``).

gunicorn does not run Django's system checks as ``runserver`` does: they run here, so
a check error (an allow-list unset outside the demo, ``cmi_saleor.E001``...) stops the
workers at start instead of serving a half-configured app.
"""

from __future__ import annotations

import os

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saleor_app.settings")
application = get_wsgi_application()
_errors = [m for m in checks.run_checks() if m.is_serious()]
if _errors:
    raise ImproperlyConfigured("system check errors:\n" + "\n".join(map(str, _errors)))
