"""Fixtures of the Wagtail adapter's tests: a site tree, CMI settings, the real emulator.

Pages are created the way Wagtail does (``add_child`` + a published revision); the site's
CMI settings point at ``Sandbox(port=0)`` when a test needs CMI to answer; shoppers are
either Django's test client (signed callbacks from :mod:`cmi_core.testing`) or a scripted
HTTP browser against ``live_server`` and the emulator (``tests.sandbox.support.Browser``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from html import unescape
from typing import Any

import pytest
import requests
from cmi_wagtail.models import CMISettings, PaymentPage
from wagtail.models import Locale, Page, Site

from cmi_core.sandbox import DEFAULT_MERCHANT, Sandbox
from tests.adapters.dbsettings import using_postgres
from tests.adapters.wagtail.testapp.models import HomePage
from tests.sandbox.support import forms

STORE_KEY = DEFAULT_MERCHANT.store_key

postgres_only = pytest.mark.skipif(
    not using_postgres(), reason="needs PostgreSQL (runs in dev.py's PostgreSQL pass)"
)


@pytest.fixture(scope="session", autouse=True)
def _sync_orm(sync_orm_beside_playwright: None) -> None:
    """This suite mixes browser and ORM steps throughout (see tests/conftest.py)."""


@pytest.fixture(autouse=True)
def _nothing_kept() -> None:
    """Each test starts with no kept drawing of the payments list's parts: one kept by an
    earlier test (the same values, so the same bytes) would spare this test's first page
    the drawing it counts."""
    from cmi_django.listing import clear_all

    clear_all()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(port=0, callback_timeout=5.0) as running:
        yield running


@pytest.fixture
def site(db: None) -> Site:
    """The default site, rooted at a fresh French home page."""
    Locale.objects.get_or_create(language_code="fr")
    root = Page.get_first_root_node()
    if root is None:  # a transactional test flushed Wagtail's initial data
        root = Page.add_root(instance=Page(title="Root", slug="root"))
    home = root.add_child(instance=HomePage(title="Accueil", slug="accueil"))
    site = Site.objects.filter(is_default_site=True).first() or Site(
        hostname="localhost", port=80, is_default_site=True
    )
    site.root_page = home
    site.save()
    Site.clear_site_root_paths_cache()
    return site


def configure(site: Site, base_url: str | None = None, **values: Any) -> CMISettings:
    """The site's CMI settings: the emulator's default merchant, with its API user."""
    settings = CMISettings.for_site(site)
    settings.client_id = DEFAULT_MERCHANT.client_id
    settings.store_key = STORE_KEY
    settings.api_username = DEFAULT_MERCHANT.api_username
    settings.api_password = DEFAULT_MERCHANT.api_password
    settings.base_url = base_url or "http://127.0.0.1:9"
    for name, value in values.items():
        setattr(settings, name, value)
    settings.full_clean()
    settings.save()
    return settings


@pytest.fixture
def cmi_settings(site: Site) -> CMISettings:
    return configure(site)


@pytest.fixture
def make_page(site: Site) -> Callable[..., PaymentPage]:
    """A published payment page under the site's home (or under ``parent``)."""
    counter = iter(range(1, 10_000))

    def make(*, parent: Page | None = None, locale: str | None = None, **fields: Any) -> Any:
        n = next(counter)
        values: dict[str, Any] = {
            "title": f"Adhésion {n}",
            "slug": f"adhesion-{n}",
            "amount_rule": "fixed",
            "fixed_amount": Decimal("150.00"),
            "thank_you_text": "<p>Merci pour votre paiement.</p>",
            "failure_text": "<p>Le paiement n'a pas abouti.</p>",
        }
        values.update(fields)
        if locale:
            values["locale"] = Locale.objects.get_or_create(language_code=locale)[0]
        page = PaymentPage(**values)
        page.full_clean(exclude=["path", "depth", "url_path"])
        (parent or site.root_page).add_child(instance=page)
        page.save_revision().publish()
        page.refresh_from_db()
        return page

    return make


@pytest.fixture
def pay_page(make_page: Callable[..., PaymentPage], cmi_settings: CMISettings) -> PaymentPage:
    return make_page()


def redirect_fields(html: str) -> tuple[str, list[tuple[str, str]]]:
    """The action and signed fields of the auto-submitting form sent to CMI."""
    action, fields, _ = forms(html)["cmi-payment-form"]
    return unescape(action), [(k, unescape(v)) for k, v in fields]


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


class Shopper:
    """A scripted shopper over real HTTP: the Wagtail site (live_server) then the emulator."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()

    def submit(self, path: str, data: dict[str, str], query: str = "") -> requests.Response:
        url = f"{self.base_url}{path}{query}"
        form = self.http.get(url, timeout=10)
        assert form.status_code == 200, form.text[:500]
        payload = {"csrfmiddlewaretoken": csrf_from(form.text), **data}
        button = re.search(r'name="button" value="([^"]+)"', form.text)
        if button:
            payload["button"] = unescape(button.group(1))
        return self.http.post(url, data=payload, headers={"Referer": url}, timeout=10)
