"""Minimal Django settings for the shared layer's tests.

``pytest --ds tests.adapters.django.settings tests/adapters/django``
"""

from __future__ import annotations

from tests.adapters.dbsettings import database_settings
from tests.adapters.tasksettings import TASK_APPS, TEST_TASKS

SECRET_KEY = "cmi-django-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True
TIME_ZONE = "Africa/Casablanca"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    "cmi_django",
    "tests.adapters.django.testapp",
    "tests.adapters.django.reference",  # docs/adding-a-platform.md
    *TASK_APPS,  # the task queue, for the tests that switch to it (tasksettings.py)
]
TASKS = TEST_TASKS
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.adapters.django.urls"
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
DATABASES = database_settings()
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
CMI_PAYMENTS = {
    "default": {
        "CLIENT_ID": "600000001",
        "STORE_KEY": "TEST-STORE-KEY-0001",
        "CAPTURE_MODE": "auto",
    },
}
CMI_PUBLIC_URL = "https://shop.example.ma"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "root": {"handlers": ["null"]},
}
