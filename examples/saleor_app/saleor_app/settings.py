"""Settings of the standalone CMI app for Saleor, from the environment.

- ``CMI_SALEOR_APP_URL``: this app's public base URL as Saleor and CMI reach it
  (default ``http://127.0.0.1:8000``; in production an https URL).
- ``DATABASE_URL``: ``postgresql://user:password@host:5432/name``; SQLite
  (``db.sqlite3`` beside this project) when unset.
- ``DJANGO_SECRET_KEY`` (required), ``DJANGO_DEBUG`` (``1``), ``DJANGO_ALLOWED_HOSTS``
  (comma-separated; default: the host of CMI_SALEOR_APP_URL).
- ``CMI_SALEOR_DEMO=1``: the local demo (``run.py`` on a laptop): a known demo secret key
  when ``DJANGO_SECRET_KEY`` is unset, and unset allow-lists allow anything. Never set it
  on a server: without it, a missing secret key or allow-list stops the app at start.
- ``CMI_ENCRYPTION_KEY``: the key encrypting stored tokens and CMI secrets (default:
  derived from the secret key; set it so that rotating the secret key keeps them), and
  ``CMI_ENCRYPTION_KEY_FALLBACKS`` (comma-separated previous keys, while rotating).
- ``CMI_SALEOR_ALLOWED_API_URLS``: comma-separated Saleor API URLs allowed to install the
  app (required outside the demo).
- ``CMI_SALEOR_ALLOWED_RETURN_HOSTS``: comma-separated storefront hosts (required outside
  the demo).
- ``CMI_SALEOR_DASHBOARD_ORIGINS``: comma-separated origins of a Saleor Dashboard served
  from another origin than the API (they may frame the configuration page).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def _list(name: str) -> list[str] | None:
    value = os.environ.get(name, "").strip()
    return [v.strip() for v in value.split(",") if v.strip()] or None


def _database(url: str) -> dict[str, Any]:
    if not url:
        # SQLite serialises writers: IMMEDIATE takes the write lock when a transaction
        # begins, so concurrent webhooks and callbacks wait (up to "timeout" seconds)
        # instead of failing with "database is locked".
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(BASE_DIR / "db.sqlite3"),
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ImproperlyConfigured("DATABASE_URL: postgresql://user:password@host:5432/name")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or 5432),
        # one connection per worker thread kept between requests: no connection set up
        # per callback, and the callback's statements prepared on it (docs/django-layer.md)
        "CONN_MAX_AGE": int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        "CONN_HEALTH_CHECKS": True,
    }


DEBUG = os.environ.get("DJANGO_DEBUG", "") in ("1", "true", "yes")
#: Only an explicit CMI_SALEOR_DEMO=1 is the demo (see cmi_saleor.conf); fails closed.
CMI_SALEOR_DEMO = os.environ.get("CMI_SALEOR_DEMO", "") == "1"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not CMI_SALEOR_DEMO:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required (CMI_SALEOR_DEMO=1 only for the local demo)"
        )
    SECRET_KEY = "insecure-demo-key-change-me"  # noqa: S105 - local demo only

CMI_SALEOR_APP_URL = os.environ.get("CMI_SALEOR_APP_URL", "http://127.0.0.1:8000")
CMI_SALEOR_ALLOWED_API_URLS = _list("CMI_SALEOR_ALLOWED_API_URLS")
CMI_SALEOR_ALLOWED_RETURN_HOSTS = _list("CMI_SALEOR_ALLOWED_RETURN_HOSTS")
CMI_SALEOR_DASHBOARD_ORIGINS = _list("CMI_SALEOR_DASHBOARD_ORIGINS")
CMI_ENCRYPTION_KEY = os.environ.get("CMI_ENCRYPTION_KEY") or None
CMI_ENCRYPTION_KEY_FALLBACKS = _list("CMI_ENCRYPTION_KEY_FALLBACKS")
CMI_PAYMENTS: dict[str, dict[str, str]] = {}  # every channel is configured in the app

ALLOWED_HOSTS = _list("DJANGO_ALLOWED_HOSTS") or [
    urlsplit(CMI_SALEOR_APP_URL).hostname or "localhost",
    "localhost",
    "127.0.0.1",
]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "cmi_django",
    "cmi_saleor",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "saleor_app.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
WSGI_APPLICATION = "saleor_app.wsgi.application"
DATABASES = {"default": _database(os.environ.get("DATABASE_URL", ""))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "Africa/Casablanca"
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "static"
if CMI_SALEOR_APP_URL.startswith("https://"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    CSRF_TRUSTED_ORIGINS = [CMI_SALEOR_APP_URL]
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "cmi_saleor": {"handlers": ["console"], "level": "INFO"},
        "cmi_django": {"handlers": ["console"], "level": "INFO"},
    },
}
