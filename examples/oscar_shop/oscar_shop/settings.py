"""The Oscar demo shop: Django Oscar 4.2 paying through CMI, wired to ``cmi sandbox``.

For the demo only: DEBUG on, a fixed SECRET_KEY, SQLite under ``var/``. Environment:

- ``CMI_SANDBOX_URL`` (default ``http://127.0.0.1:8765``): where the emulator listens;
- ``CMI_CAPTURE_MODE`` (default ``auto``): ``manual`` to capture from the dashboard;
- ``OSCAR_SHOP_VAR`` (default ``examples/oscar_shop/var``): the database and media.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

from cmi_oscar.dashboard.menu import NAVIGATION_ENTRY
from django.utils.translation import gettext_lazy as _
from oscar.defaults import *  # noqa: F403 - Oscar's documented way to start its settings

from cmi_core.sandbox import DEFAULT_MERCHANT

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("OSCAR_SHOP_VAR", BASE_DIR / "var"))

SECRET_KEY = "oscar-shop-demo-only-not-a-secret"  # noqa: S105 - a local demo
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.flatpages",
    "oscar.config.Shop",
    "oscar.apps.analytics.apps.AnalyticsConfig",
    # CMI's checkout: Oscar's checkout app with the CMI payment step.
    "cmi_oscar.checkout.apps.CheckoutConfig",
    "oscar.apps.address.apps.AddressConfig",
    "oscar.apps.shipping.apps.ShippingConfig",
    "oscar.apps.catalogue.apps.CatalogueConfig",
    "oscar.apps.catalogue.reviews.apps.CatalogueReviewsConfig",
    "oscar.apps.communication.apps.CommunicationConfig",
    "oscar.apps.partner.apps.PartnerConfig",
    "oscar.apps.basket.apps.BasketConfig",
    "oscar.apps.payment.apps.PaymentConfig",
    "oscar.apps.offer.apps.OfferConfig",
    "oscar.apps.order.apps.OrderConfig",
    "oscar.apps.customer.apps.CustomerConfig",
    "oscar.apps.search.apps.SearchConfig",
    "oscar.apps.voucher.apps.VoucherConfig",
    "oscar.apps.wishlists.apps.WishlistsConfig",
    "oscar.apps.dashboard.apps.DashboardConfig",
    "oscar.apps.dashboard.reports.apps.ReportsDashboardConfig",
    "oscar.apps.dashboard.users.apps.UsersDashboardConfig",
    "oscar.apps.dashboard.orders.apps.OrdersDashboardConfig",
    "oscar.apps.dashboard.catalogue.apps.CatalogueDashboardConfig",
    "oscar.apps.dashboard.offers.apps.OffersDashboardConfig",
    "oscar.apps.dashboard.partners.apps.PartnersDashboardConfig",
    "oscar.apps.dashboard.pages.apps.PagesDashboardConfig",
    "oscar.apps.dashboard.ranges.apps.RangesDashboardConfig",
    "oscar.apps.dashboard.reviews.apps.ReviewsDashboardConfig",
    "oscar.apps.dashboard.vouchers.apps.VouchersDashboardConfig",
    "oscar.apps.dashboard.communications.apps.CommunicationsDashboardConfig",
    "oscar.apps.dashboard.shipping.apps.ShippingDashboardConfig",
    "widget_tweaks",
    "haystack",
    "treebeard",
    "django_tables2",
    # CMI
    "cmi_django",
    "cmi_oscar",
    "cmi_oscar.dashboard.apps.CMIDashboardConfig",
    "oscar_shop",
]

# Follow-up work (the order e-mail, the capture after an okUrl approval) goes through Django's
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
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "oscar.apps.basket.middleware.BasketMiddleware",
    "django.contrib.flatpages.middleware.FlatpageFallbackMiddleware",
]

ROOT_URLCONF = "oscar_shop.urls"
WSGI_APPLICATION = "oscar_shop.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The demo's own templates first: oscar/base.html with dir="rtl" in Arabic.
        "DIRS": [BASE_DIR / "oscar_shop" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "oscar.apps.search.context_processors.search_form",
                "oscar.apps.checkout.context_processors.checkout",
                "oscar.apps.communication.notifications.context_processors.notifications",
                "oscar.core.context_processors.metadata",
            ],
        },
    },
]

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
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

AUTHENTICATION_BACKENDS = (
    "oscar.apps.customer.auth_backends.EmailBackend",
    "django.contrib.auth.backends.ModelBackend",
)
# Oscar's catalogue pages are search results: haystack's simple engine finds nothing for
# an empty query, so the demo indexes its few products with Whoosh (pure Python).
HAYSTACK_CONNECTIONS = {
    "default": {
        "ENGINE": "haystack.backends.whoosh_backend.WhooshEngine",
        "PATH": str(VAR_DIR / "whoosh_index"),
    }
}
HAYSTACK_SIGNAL_PROCESSOR = "haystack.signals.RealtimeSignalProcessor"
SITE_ID = 1
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

LANGUAGE_CODE = "fr"
# Arabic for the few shopper-page strings Oscar's Arabic catalogue lacks (without it Django
# falls back to the default language: French lines on an Arabic page).
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGES = [("fr", _("French")), ("ar", _("Arabic")), ("en", _("English"))]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "Africa/Casablanca"

STATIC_URL = "/static/"
MEDIA_URL = "/media/"
MEDIA_ROOT = str(VAR_DIR / "media")

# Oscar
OSCAR_SHOP_NAME = "Boutique CMI (démo)"
OSCAR_DEFAULT_CURRENCY = "MAD"
# Oscar's pages show money as the CMI pages do ("120,50 MAD" in French, "120.50 MAD" in
# English): the number in the page's locale, then the code (cmi_django.display's format).
OSCAR_CURRENCY_FORMAT = {"MAD": {"format": "#,##0.00\xa0¤¤", "currency_digits": False}}
OSCAR_ALLOW_ANON_CHECKOUT = True
OSCAR_THUMBNAILER = "oscar_shop.thumbnails.PlainThumbnailer"  # no sorl-thumbnail needed
OSCAR_INITIAL_ORDER_STATUS = "Pending"
OSCAR_ORDER_STATUS_PIPELINE = {
    "Pending": ("Paid", "Cancelled"),
    "Paid": ("Being processed", "Refunded", "Cancelled"),
    "Being processed": ("Complete", "Refunded"),
    "Complete": ("Refunded",),
    "Refunded": (),
    "Cancelled": (),
}
OSCAR_DASHBOARD_NAVIGATION = [*OSCAR_DASHBOARD_NAVIGATION, NAVIGATION_ENTRY]  # noqa: F405

# CMI: the default merchant of `cmi sandbox`.
CMI_PAYMENTS = {
    "default": {
        "CLIENT_ID": DEFAULT_MERCHANT.client_id,
        "STORE_KEY": DEFAULT_MERCHANT.store_key,
        "API_USERNAME": DEFAULT_MERCHANT.api_username,
        "API_PASSWORD": DEFAULT_MERCHANT.api_password,
        "BASE_URL": os.environ.get("CMI_SANDBOX_URL", "http://127.0.0.1:8765"),
        "ENVIRONMENT": "test",
        "CURRENCY": "504",
        "LANG": "fr",
        "CAPTURE_MODE": os.environ.get("CMI_CAPTURE_MODE", "auto"),
    }
}
CMI_OSCAR_STATUS = {"authorised": "Pending", "captured": "Paid", "voided": "Cancelled"}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "cmi_oscar": {"handlers": ["console"], "level": "INFO"},
        "cmi_django": {"handlers": ["console"], "level": "INFO"},
    },
}
