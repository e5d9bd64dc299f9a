"""Django Oscar 4.2 settings for the Oscar adapter's tests (``--ds tests.adapters.oscar.settings``).

The database comes from ``tests/adapters/dbsettings.py``: SQLite in memory, or the
PostgreSQL server ``python3 dev.py test`` starts (``CMI_TEST_DATABASE=postgres``).
"""

from __future__ import annotations

from cmi_oscar.dashboard.menu import NAVIGATION_ENTRY
from oscar import INSTALLED_APPS as OSCAR_APPS
from oscar.defaults import *  # noqa: F403 - Oscar's documented way to start its settings

from cmi_core.sandbox import DEFAULT_MERCHANT
from tests.adapters.dbsettings import database_settings
from tests.adapters.tasksettings import TASK_APPS, TEST_TASKS

SECRET_KEY = "cmi-oscar-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True
TIME_ZONE = "Africa/Casablanca"
USE_I18N = True
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "French"), ("ar", "Arabic")]

INSTALLED_APPS = [
    "cmi_oscar.checkout.apps.CheckoutConfig" if app.startswith("oscar.apps.checkout") else app
    for app in OSCAR_APPS
] + ["cmi_django", "cmi_oscar", "cmi_oscar.dashboard.apps.CMIDashboardConfig", *TASK_APPS]
TASKS = TEST_TASKS  # tests that need the queue switch to DATABASE_TASKS

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "oscar.apps.basket.middleware.BasketMiddleware",
]
ROOT_URLCONF = "tests.adapters.oscar.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "oscar.apps.search.context_processors.search_form",
                "oscar.apps.checkout.context_processors.checkout",
                "oscar.apps.communication.notifications.context_processors.notifications",
                "oscar.core.context_processors.metadata",
            ]
        },
    }
]
DATABASES = database_settings()
# Tables straight from the models: Oscar's ~200 migrations would dominate the run time.
DATABASES["default"].setdefault("TEST", {})["MIGRATE"] = False
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
AUTHENTICATION_BACKENDS = (
    "oscar.apps.customer.auth_backends.EmailBackend",
    "django.contrib.auth.backends.ModelBackend",
)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast test logins
HAYSTACK_CONNECTIONS = {"default": {"ENGINE": "haystack.backends.simple_backend.SimpleEngine"}}
HAYSTACK_SIGNAL_PROCESSOR = "haystack.signals.BaseSignalProcessor"  # no search index to update
SITE_ID = 1
STATIC_URL = "/static/"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

OSCAR_DEFAULT_CURRENCY = "MAD"
OSCAR_ALLOW_ANON_CHECKOUT = True
OSCAR_THUMBNAILER = "tests.adapters.oscar.support.PlainThumbnailer"
OSCAR_ORDER_STATUS_PIPELINE = {
    "Pending": ("Paid", "Cancelled"),
    "Paid": ("Refunded", "Cancelled"),
    "Refunded": (),
    "Cancelled": (),
}
OSCAR_DASHBOARD_NAVIGATION = [*OSCAR_DASHBOARD_NAVIGATION, NAVIGATION_ENTRY]  # noqa: F405

CMI_PAYMENTS = {
    "default": {
        "CLIENT_ID": DEFAULT_MERCHANT.client_id,
        "STORE_KEY": DEFAULT_MERCHANT.store_key,
        "CAPTURE_MODE": "auto",
    },
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "root": {"handlers": ["null"]},
}
