"""Django settings of the Wagtail adapter's tests (``--ds tests.adapters.wagtail.settings``).

A real Wagtail 8 stack: wagtail core, admin, users, documents, images, sites, settings,
routable pages and ``cmi_wagtail`` with the shared layer. The database comes from
:func:`tests.adapters.dbsettings.database_settings` (SQLite, or PostgreSQL in dev.py's
second pass).
"""

from __future__ import annotations

from tests.adapters.dbsettings import database_settings
from tests.adapters.tasksettings import TASK_APPS, TEST_TASKS

SECRET_KEY = "cmi-wagtail-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "Africa/Casablanca"
LANGUAGE_CODE = "fr"
USE_I18N = True
LANGUAGES = [("fr", "Français"), ("en", "English"), ("ar", "العربية")]
WAGTAIL_I18N_ENABLED = True
WAGTAIL_CONTENT_LANGUAGES = LANGUAGES
WAGTAIL_SITE_NAME = "CMI tests"
WAGTAILADMIN_BASE_URL = "http://testserver"
WAGTAIL_GRAVATAR_PROVIDER_URL = None  # offline: Wagtail's own avatar, as the demo's
INSTALLED_APPS = [
    "cmi_wagtail",
    "cmi_django",
    "tests.adapters.wagtail.testapp",
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
    "wagtail",
    "modelcluster",
    "taggit",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    *TASK_APPS,  # the task queue, for the tests that switch to it (tasksettings.py)
]
TASKS = TEST_TASKS
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
]
ROOT_URLCONF = "tests.adapters.wagtail.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "wagtail.contrib.settings.context_processors.settings",
            ]
        },
    }
]
DATABASES = database_settings()
STATIC_URL = "/static/"
MEDIA_URL = "/media/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEFAULT_FROM_EMAIL = "boutique@example.ma"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast test users
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "root": {"handlers": ["null"]},
}
