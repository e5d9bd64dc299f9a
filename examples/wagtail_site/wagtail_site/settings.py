"""Settings of the Wagtail demo site: SQLite under ``var/``, CMI through ``cmi sandbox``.

- ``WAGTAIL_SITE_VAR`` (default ``examples/wagtail_site/var``): database and media.
- ``CMI_SANDBOX_URL`` (default ``http://127.0.0.1:8765``): the emulator the ``setup_demo``
  command writes into the site's CMI settings (Wagtail admin, Settings, CMI payments).

Not for production: DEBUG, a fixed SECRET_KEY, loopback only.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("WAGTAIL_SITE_VAR", BASE_DIR / "var"))

SECRET_KEY = "wagtail-demo-site-not-secret"  # noqa: S105 - a local demo
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "Africa/Casablanca"
USE_I18N = True
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("ar", "العربية"), ("en", "English")]
WAGTAIL_I18N_ENABLED = True
WAGTAIL_CONTENT_LANGUAGES = LANGUAGES
WAGTAIL_SITE_NAME = "Association Atlas (démo CMI)"
WAGTAILADMIN_BASE_URL = "http://127.0.0.1:8001"
# No Gravatar: the admin draws Wagtail's own avatar instead of asking gravatar.com with a
# hash of each staff member's e-mail (the demo runs offline, and that hash is personal).
WAGTAIL_GRAVATAR_PROVIDER_URL = None
CMI_SANDBOX_URL = os.environ.get("CMI_SANDBOX_URL", "http://127.0.0.1:8765")

INSTALLED_APPS = [
    "home",
    "cmi_wagtail",
    "cmi_django",
    "wagtail.contrib.settings",
    "wagtail.contrib.routable_page",
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail.locales",
    "wagtail",
    "modelcluster",
    "taggit",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

# Follow-up work (the e-mail receipt, the capture after an okUrl approval) goes through Django's
# tasks framework (cmi_django.tasks). The demo runs each task at once, after the commit:
# the immediate backend of django.tasks (Django 6) or of the django_tasks backport (5.2).
# Production queues them in the database and runs a worker: docs/installation.md.
TASKS = {
    "default": {
        "BACKEND": ("django.tasks" if find_spec("django.tasks") else "django_tasks")
        + ".backends.immediate.ImmediateBackend"
    }
}
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
]
ROOT_URLCONF = "wagtail_site.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "wagtail.contrib.settings.context_processors.settings",
            ]
        },
    }
]
WSGI_APPLICATION = "wagtail_site.wsgi.application"
# SQLite serialises writers: IMMEDIATE takes the write lock when a transaction begins, so
# concurrent callbacks and staff operations wait (up to "timeout" seconds) for their turn
# instead of failing with "database is locked".
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(VAR_DIR / "db.sqlite3"),
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"
STATIC_ROOT = str(VAR_DIR / "static")
MEDIA_URL = "/media/"
MEDIA_ROOT = str(VAR_DIR / "media")
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = "association@example.ma"
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "cmi_django": {"handlers": ["console"], "level": "INFO"},
        "cmi_wagtail": {"handlers": ["console"], "level": "INFO"},
    },
}
