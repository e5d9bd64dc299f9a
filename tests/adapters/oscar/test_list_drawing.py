"""Oscar's dashboard list of CMI payments: its filters and rows drawn in Python.

The page must be byte for byte what the template's own loops draw (``views.FAST`` off),
in French, English and Arabic, for a superuser and for staff without permissions, with
filters set, an empty list and hostile values; a site's own list template keeps the
template's drawing.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import Any

import pytest
from cmi_django.models import Payment
from cmi_oscar.dashboard import chrome, views
from django.test import Client
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db

URL = "/dashboard/cmi/"
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
#: Oscar's base template writes the minute the page was drawn (``{% now %}``): two
#: drawings a minute boundary apart differ there (CI's newest cell did, at 08:59/09:00)
DRAWN_AT = re.compile(r'<meta name="created" content="[^"]*" />')


@pytest.fixture
def superuser(django_user_model: Any) -> Client:
    user = django_user_model.objects.create_superuser("boss", "boss@example.ma", "pw")
    client = Client()
    client.force_login(user)
    return client


def payments() -> None:
    moment = timezone.now() - datetime.timedelta(days=1)
    rows = [
        ("A<1>&\"'", "100007", "captured", Decimal("1249.50"), "VISA", "4000 00** **** 0002"),
        ("A2", "1000<b>8", "needs_attention", Decimal("10.00"), "<MC>", ""),
        ("A3", "100009", "declined", Decimal("0.01"), "", "5000 **"),
        ("A4", "100010", "authorised", Decimal("99999.99"), "AMEX", "3 **"),
        ("A5", "100010", "partially_refunded", Decimal("250.00"), "VISA", "4 **"),
    ]
    for index, (oid, reference, state, amount, brand, pan) in enumerate(rows):
        payment = Payment.objects.create(
            oid=oid,
            platform="oscar",
            reference=reference,
            amount=amount,
            state=state,
            captured_amount=amount if state != "declined" else Decimal(0),
            refunded_amount=Decimal("1.50") if state == "partially_refunded" else Decimal(0),
            card_brand=brand,
            masked_pan=pan,
            config_key="oscar:1",
        )
        Payment.objects.filter(pk=payment.pk).update(
            created_at=moment - datetime.timedelta(minutes=index)
        )
    Payment.objects.create(oid="W1", platform="wagtail", reference="1", amount=Decimal(5))


def with_an_order() -> None:
    from oscar.test.factories import create_order

    create_order(number="100007")


def page(client: Client, query: dict[str, str], lang: str, fast: bool) -> str:
    views.FAST = fast
    try:
        response = client.get(URL, query, headers={"accept-language": lang})
    finally:
        views.FAST = True
    assert response.status_code == 200
    return DRAWN_AT.sub("", CSRF.sub("", response.content.decode()))


def both(client: Client, query: dict[str, str], lang: str) -> str:
    """The page drawn twice fast (drawn, then kept) and once by the template: all equal."""
    slow = page(client, query, lang, False)
    assert page(client, query, lang, True) == slow
    assert page(client, query, lang, True) == slow
    return slow


QUERIES = [
    {},
    {"state": "captured"},
    {"state": "bogus<x>", "order_number": "<script>"},
    {"order_number": "100010", "date_from": "2000-01-01", "date_to": "2999-12-31"},
    {"date_from": "not a date", "page": "1"},
    {"order_number": "x" * 200},
]


@pytest.mark.parametrize("lang", ["fr", "en", "ar"])
@pytest.mark.parametrize("query", QUERIES)
def test_page_is_the_templates_drawing(
    superuser: Client, staff: Client, lang: str, query: dict[str, str]
) -> None:
    payments()
    with_an_order()
    html = both(superuser, query, lang)
    both(staff, query, lang)
    assert 'id="cmi-search-form"' in html


@pytest.mark.parametrize("lang", ["fr", "en", "ar"])
def test_rows_are_drawn_with_links_amounts_and_escaping(superuser: Client, lang: str) -> None:
    payments()
    with_an_order()
    html = both(superuser, {}, lang)
    assert "A&lt;1&gt;&amp;&quot;&#x27;" in html
    assert "A<1>" not in html
    assert "1000&lt;b&gt;8" in html
    assert "&lt;MC&gt;" in html
    assert reverse("dashboard:order-detail", kwargs={"number": "100007"}) in html
    assert html.count("<tr>") == 6  # the head and five Oscar payments (not Wagtail's)


@pytest.mark.parametrize("lang", ["fr", "en", "ar"])
def test_empty_list(superuser: Client, lang: str) -> None:
    html = both(superuser, {}, lang)
    assert 'id="cmi-payment-table"' not in html
    payments()
    assert 'id="cmi-payment-table"' not in both(superuser, {"state": "voided"}, lang)


def test_many_pages(superuser: Client) -> None:
    for index in range(60):
        Payment.objects.create(
            oid=f"P{index}", platform="oscar", reference=str(index), amount=Decimal(index)
        )
    for query in ({}, {"page": "2"}, {"page": "3", "state": "created"}):
        both(superuser, query, "fr")


def test_the_fast_path_draws(superuser: Client, monkeypatch: Any) -> None:
    """A change in the Python drawing shows (the comparison above can fail)."""
    payments()
    calls: list[int] = []
    drawn = views._rows

    def rows(items: Any) -> Any:
        calls.append(1)
        return drawn(items).replace("<td>", "<td >", 1)

    monkeypatch.setattr(views, "_rows", rows)
    fast, slow = page(superuser, {}, "en", True), page(superuser, {}, "en", False)
    assert calls == [1]
    assert fast != slow


def test_kept_filters_are_bounded(superuser: Client, monkeypatch: Any) -> None:
    monkeypatch.setattr(views._drawn_filters, "bound", 3)
    for index in range(7):
        page(superuser, {"order_number": str(index)}, "en", True)
        assert len(views._drawn_filters) <= 3


def test_a_sites_own_template_keeps_the_template_drawing(
    superuser: Client, settings: Any, tmp_path: Any
) -> None:
    payments()
    folder = tmp_path / "cmi_oscar" / "dashboard"
    folder.mkdir(parents=True)
    (folder / "payment_list.html").write_text(
        "{% for p in payments %}[{{ p.oid }}]{% endfor %}{{ cmi_rows }}|{{ cmi_filters }}"
    )
    engine = settings.TEMPLATES[0]
    settings.TEMPLATES = [{**engine, "DIRS": [str(tmp_path), *engine.get("DIRS", [])]}]
    html = page(superuser, {}, "en", True)
    assert html.startswith("[A&lt;1&gt;&amp;&quot;&#x27;][A2]")
    assert html.endswith("]|")  # neither drawing reached the site's template


# -- the navigation bar ---------------------------------------------------------------------


def nav_of(html: str) -> str:
    start = html.index('id="bottom_nav_bar"')
    return html[start : html.index("</nav>", start)]


def test_navigation_is_drawn_once_for_the_same_entries(superuser: Client, monkeypatch: Any) -> None:
    from oscar.apps.dashboard import menu

    built: list[int] = []
    create = menu.create_menu

    def counted(items: Any, parent: Any = None) -> Any:
        if parent is None:  # the menu, not an entry's children
            built.append(1)
        return create(items, parent=parent)

    chrome._drawn.clear()
    monkeypatch.setattr(menu, "create_menu", counted)
    first = page(superuser, {}, "fr", True)
    assert built == [1]  # drawn by Oscar's block
    assert page(superuser, {"state": "captured"}, "fr", True)
    assert built == [1]  # kept
    assert nav_of(first) == nav_of(page(superuser, {}, "fr", False))
    assert len(built) == 2
    page(superuser, {}, "ar", True)
    assert len(built) == 3  # another language, another drawing


def test_a_permission_granted_shows_for_that_user_only(
    settings: Any, monkeypatch: Any, django_user_model: Any
) -> None:
    from django.apps import apps
    from django.contrib.auth.models import Permission

    settings.OSCAR_DASHBOARD_NAVIGATION = [
        *settings.OSCAR_DASHBOARD_NAVIGATION,
        {"label": "Secret entry", "url_name": "cmi_oscar_dashboard:cmi-payment-list"},
    ]
    config = apps.get_app_config("cmi_oscar_dashboard")
    monkeypatch.setattr(
        config, "permissions_map", {"cmi-payment-list": ["is_staff", "cmi_django.view_payment"]}
    )
    clients = {}
    for name in ("amina", "omar"):
        user = django_user_model.objects.create_user(
            name, f"{name}@example.ma", "pw", is_staff=True
        )
        clients[name] = Client()
        clients[name].force_login(user)
    for client in clients.values():
        assert "Secret entry" not in both(client, {}, "en")
    amina = django_user_model.objects.get(username="amina")
    amina.user_permissions.add(Permission.objects.get(codename="view_payment"))
    assert "Secret entry" in nav_of(both(clients["amina"], {}, "en"))
    assert "Secret entry" not in both(clients["omar"], {}, "en")
    assert "Secret entry" in nav_of(page(clients["amina"], {}, "en", True))


def test_an_entry_with_its_own_access_function_keeps_oscars_bar(
    superuser: Client, settings: Any
) -> None:
    settings.OSCAR_DASHBOARD_NAVIGATION = [
        *settings.OSCAR_DASHBOARD_NAVIGATION,
        {
            "label": "Own access",
            "url_name": "cmi_oscar_dashboard:cmi-payment-list",
            "access_fn": lambda user, *args: user.is_superuser,
        },
    ]
    user = django_user_model_superuser()
    assert chrome.navigation(user) is None
    assert "Own access" in nav_of(both(superuser, {}, "en"))


def django_user_model_superuser() -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="boss")


def test_another_default_access_function_keeps_oscars_bar(superuser: Client, settings: Any) -> None:
    settings.OSCAR_DASHBOARD_DEFAULT_ACCESS_FUNCTION = (
        "oscar.apps.dashboard.nav.default_access_fn "[:-1]
    )
    assert chrome.navigation(django_user_model_superuser()) is not None
    settings.OSCAR_DASHBOARD_NAVIGATION = list(settings.OSCAR_DASHBOARD_NAVIGATION)
    settings.OSCAR_DASHBOARD_DEFAULT_ACCESS_FUNCTION = (
        "tests.adapters.oscar.test_list_drawing.nobody"
    )
    assert chrome.navigation(django_user_model_superuser()) is None
    assert 'id="bottom_nav_bar"' in both(superuser, {}, "en")


def nobody(user: Any, *args: Any) -> bool:
    return False


def test_unknown_oscar_code_keeps_oscars_bar(superuser: Client, monkeypatch: Any) -> None:
    monkeypatch.setattr(chrome, "CODE_SHA256", frozenset())
    chrome._code_is_known.cache_clear()
    try:
        assert chrome.navigation(django_user_model_superuser()) is None
        both(superuser, {}, "fr")
    finally:
        monkeypatch.undo()
        chrome._code_is_known.cache_clear()
    assert chrome.navigation(django_user_model_superuser()) is not None


def test_a_sites_own_navigation_block_is_drawn(
    superuser: Client, settings: Any, tmp_path: Any
) -> None:
    folder = tmp_path / "oscar" / "dashboard"
    folder.mkdir(parents=True)
    (folder / "layout.html").write_text(
        '{% extends "oscar/dashboard/layout.html" %}'
        "{% block dashboard_nav %}SITE NAV {{ user.username }}{{ block.super }}{% endblock %}"
    )
    engine = settings.TEMPLATES[0]
    settings.TEMPLATES = [{**engine, "DIRS": [str(tmp_path), *engine.get("DIRS", [])]}]
    assert chrome.navigation(django_user_model_superuser()) is None
    html = both(superuser, {}, "en")
    assert "SITE NAV boss" in html
    assert 'id="bottom_nav_bar"' in html


def test_the_same_statements(superuser: Client, staff: Client) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    payments()
    with_an_order()
    for client in (superuser, staff):
        counts = []
        for fast in (False, True, False, True):
            with CaptureQueriesContext(connection) as queries:
                page(client, {"state": "captured"}, "fr", fast)
            counts.append(len(queries))
        assert counts[0] == counts[1] == counts[2] == counts[3]


def test_a_menu_that_cannot_be_read_keeps_oscars_bar(
    superuser: Client, settings: Any, monkeypatch: Any
) -> None:
    def fails(*args: Any) -> Any:
        raise OSError("no such layout file")

    monkeypatch.setattr(chrome, "_build", fails)
    settings.OSCAR_DASHBOARD_NAVIGATION = list(settings.OSCAR_DASHBOARD_NAVIGATION)
    assert chrome.navigation(django_user_model_superuser()) is None
    assert 'id="bottom_nav_bar"' in both(superuser, {}, "en")
