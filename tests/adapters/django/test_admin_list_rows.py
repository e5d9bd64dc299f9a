"""The Django admin's payments list drawn in Python, byte for byte as Django draws it.

Issue 16, goal 4 (``cmi_django.templatetags.cmi_admin_list``): each page is rendered
twice, once with the rows drawn by the tag and once with Django's own code (the tag's
guard told that Django's code is another version), and the two pages compared.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from cmi_django import admin as cmi_admin
from cmi_django.models import Payment
from cmi_django.templatetags import cmi_admin_list
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import path
from django.utils import formats, timezone, translation

pytestmark = pytest.mark.django_db

LIST = "/admin/cmi_django/payment/"
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')


@pytest.fixture
def staff(client: Client) -> Client:
    User.objects.create_superuser("staff", "staff@example.ma", "pw")
    client.login(username="staff", password="pw")
    return client


@pytest.fixture
def payments() -> list[Payment]:
    """Payments whose cells test the formatting: states, amounts with grouping, blank
    references, markup in a reference, dates on both sides of a day in Casablanca."""
    rows = []
    states = [
        "captured",
        "redirected",
        "declined",
        "authorised",
        "partially_refunded",
        "needs_attention",
    ]
    for index in range(60):
        rows.append(
            Payment(
                oid=f"OID{index:05d}",
                platform=("oscar", "wagtail", "saleor")[index % 3],
                reference="" if index % 7 == 0 else f"<b>ref&{index}</b> \"'",
                amount=Decimal("1234567.89") if index % 5 == 0 else Decimal(f"{index}.05"),
                currency="504",
                state=states[index % len(states)],
                email=f"payer{index}@example.ma",
                config_key=f"{('oscar', 'wagtail', 'saleor')[index % 3]}:1",
            )
        )
    created = Payment.objects.bulk_create(rows)
    start = datetime.datetime(2026, 1, 10, 22, 30, tzinfo=datetime.UTC)  # UTC+1 there
    for index, payment in enumerate(created):
        Payment.objects.filter(pk=payment.pk).update(
            created_at=start + datetime.timedelta(hours=7 * index)
        )
    # Noon on the 11th and midnight on the 12th in Casablanca (UTC+1): English writes
    # them as words.
    for payment, hour in ((created[1], 23), (created[2], 11)):
        Payment.objects.filter(pk=payment.pk).update(
            created_at=datetime.datetime(2026, 1, 11, hour, 0, tzinfo=datetime.UTC)
        )
    return created


@pytest.fixture
def django_code(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Call with ``(client, url)``: the page as Django's own code draws it."""

    def render(client: Client, url: str) -> str:
        with monkeypatch.context() as patch:
            patch.setattr(cmi_admin_list, "ITEMS_FOR_RESULT_SHA256", frozenset())
            cmi_admin_list._django_code_known.cache_clear()
            page = page_of(client, url)
        cmi_admin_list._django_code_known.cache_clear()
        return page

    yield render
    cmi_admin_list._django_code_known.cache_clear()


def page_of(client: Client, url: str) -> str:
    """The page, its CSRF tokens (masked anew on each render) blanked."""
    response = client.get(url)
    assert response.status_code == 200
    return CSRF.sub('name="csrfmiddlewaretoken" value=""', response.content.decode())


def assert_same(ours: str, theirs: str) -> None:
    """``ours == theirs``, else the first difference shown with its surroundings."""
    if ours != theirs:
        at = next(
            (i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b),
            min(len(ours), len(theirs)),
        )
        pytest.fail(
            f"differs at {at}: ours {ours[at - 80 : at + 80]!r}\n"
            f"Django's {theirs[at - 80 : at + 80]!r}"
        )


def drawn_here(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the pages whose rows the tag drew (appends to the list returned)."""
    drawn: list[int] = []
    original = cmi_admin_list.draw_rows

    def counting(cl: Any) -> Any:
        rows = original(cl)
        if rows is not None:
            drawn.append(len(rows))
        return rows

    monkeypatch.setattr(cmi_admin_list, "draw_rows", counting)
    return drawn


QUERIES = [
    "",
    "?p=2",
    "?platform=oscar",
    "?state=redirected&platform=wagtail",
    "?q=OID0001",
    "?q=%3Cb%3E&platform=saleor&o=4",
    "?o=-6",
    "?o=2.-4",
    "?o=5.-3",
    "?q=nothing-matches",
    "?created_at__gte=2026-01-15+00%3A00%3A00%2B00%3A00&created_at__lt=2026-02-01+00%3A00%3A00%2B00%3A00",
]


@pytest.mark.parametrize("lang", ["fr", "en", "ar"])
@pytest.mark.parametrize("query", QUERIES)
def test_the_page_is_djangos_byte_for_byte(  # noqa: PLR0917 - fixtures
    staff: Client,
    payments: list[Payment],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_code: Any,
    lang: str,
    query: str,
) -> None:
    settings.LANGUAGE_CODE = lang  # these settings have no LocaleMiddleware
    drawn = drawn_here(monkeypatch)
    ours = page_of(staff, LIST + query)
    assert drawn, "the tag drew nothing: the comparison would compare Django with itself"
    theirs = django_code(staff, LIST + query)
    assert len(drawn) == 1, "Django's drawing went through the tag's rows"
    assert_same(ours, theirs)
    if query != "?q=nothing-matches":
        assert drawn[0] > 0
        assert 'id="result_list"' in ours


def test_an_empty_list_is_djangos(staff: Client, django_code: Any, monkeypatch: Any) -> None:
    drawn = drawn_here(monkeypatch)
    ours = page_of(staff, LIST)
    assert drawn == [0]
    assert_same(ours, django_code(staff, LIST))


@pytest.mark.parametrize(
    ("lang", "state", "amount", "date"),
    [
        ("fr", "encaissé", "1234567,890", "10 janvier 2026 23:30"),
        ("en", "captured", "1234567.890", "Jan. 10, 2026, 11:30 p.m."),
        ("ar", "محصَّلة", "1234567,890", "يناير 10, 2026"),
    ],
)
def test_cells_are_in_the_staff_members_language(  # noqa: PLR0917 - fixtures
    staff: Client,
    payments: list[Payment],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    lang: str,
    state: str,
    amount: str,
    date: str,
) -> None:
    settings.LANGUAGE_CODE = lang
    drawn = drawn_here(monkeypatch)
    page = page_of(staff, LIST + "?o=6")  # oldest first: OID00000, captured, 10 January
    assert drawn
    first = page.split('<tr><th class="field-oid">', 2)[1]
    assert f'<td class="field-payment_state">{state}</td>' in first
    assert f'<td class="field-amount">{amount}</td>' in first
    assert date in first.split('class="field-created_at nowrap">')[1].split("</td>")[0]
    assert '<td class="field-reference">-</td>' in first  # a blank reference


def test_markup_in_a_value_is_escaped(
    staff: Client, payments: list[Payment], monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn = drawn_here(monkeypatch)
    page = page_of(staff, LIST + "?o=6")
    assert drawn
    assert "&lt;b&gt;ref&amp;1&lt;/b&gt; &quot;&#x27;" in page
    assert "<b>ref" not in page


def test_links_keep_the_filters(
    staff: Client, payments: list[Payment], monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn = drawn_here(monkeypatch)
    page = page_of(staff, LIST + "?platform=oscar")
    assert drawn
    oscar = [payment for payment in payments if payment.platform == "oscar"]
    for payment in oscar[:3]:
        assert (
            f'href="/admin/cmi_django/payment/{payment.pk}/change/'
            f'?_changelist_filters=platform%3Doscar">{payment.oid}</a>'
        ) in page


# The guards: anything that is not known falls back to Django's own drawing.


def site_urls(model_admin: type[admin.ModelAdmin[Any]]) -> type:
    """A urlconf whose admin site lists payments with ``model_admin``."""
    site = admin.AdminSite(name="cmi_subclass")
    site.register(Payment, model_admin)

    class Urls:
        urlpatterns: ClassVar[list[Any]] = [path("admin/", site.urls)]

    return Urls


def test_a_subclass_with_other_columns_gets_djangos_drawing(
    staff: Client, payments: list[Payment], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    class OtherColumns(cmi_admin.PaymentAdmin):
        list_display = ("oid", "email", "amount")

    settings.ROOT_URLCONF = site_urls(OtherColumns)
    drawn = drawn_here(monkeypatch)
    page = page_of(staff, LIST)
    assert drawn == []
    assert '<td class="field-email">payer59@example.ma</td>' in page  # Django drew it


def test_a_subclass_with_the_same_columns_is_drawn_here(
    staff: Client, payments: list[Payment], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    class SameColumns(cmi_admin.PaymentAdmin):
        pass

    settings.ROOT_URLCONF = site_urls(SameColumns)
    drawn = drawn_here(monkeypatch)
    page = page_of(staff, LIST)
    assert drawn == [50]
    assert f'<a href="/admin/cmi_django/payment/{payments[-1].pk}/change/">' in page


def test_a_site_template_for_the_table_gets_djangos_drawing(
    staff: Client, payments: list[Payment], settings: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    folder = tmp_path / "admin" / "cmi_django" / "payment"
    folder.mkdir(parents=True)
    (folder / "change_list_results.html").write_text(
        "SITE TABLE {% for result in results %}[{% for item in result %}{{ item }}"
        "{% endfor %}]{% endfor %}"
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    drawn = drawn_here(monkeypatch)
    page = page_of(staff, LIST)
    assert "SITE TABLE" in page
    assert drawn == []


def test_a_site_change_list_template_gets_djangos_block(
    staff: Client, payments: list[Payment], settings: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    from pathlib import Path

    source = (Path(admin.__file__).parent / "templates" / "admin" / "change_list.html").read_text()
    marked = source.replace("{% result_list cl %}", "SITE BLOCK {% result_list cl %}")
    assert marked != source
    (tmp_path / "admin").mkdir()
    (tmp_path / "admin" / "change_list.html").write_text(marked)
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    drawn = drawn_here(monkeypatch)
    page = page_of(staff, LIST)
    assert "SITE BLOCK" in page
    assert drawn == []


def test_a_changed_results_template_sha_gets_djangos_drawing(
    staff: Client, payments: list[Payment], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cmi_admin_list, "RESULTS_TEMPLATE_SHA256", frozenset())
    cmi_admin_list._KNOWN_TEMPLATES.clear()
    try:
        drawn = drawn_here(monkeypatch)
        page = page_of(staff, LIST)
    finally:
        cmi_admin_list._KNOWN_TEMPLATES.clear()
    assert drawn == []
    assert payments[-1].oid in page


def test_a_changed_django_function_gets_djangos_drawing(
    staff: Client, payments: list[Payment], django_code: Any, monkeypatch: Any
) -> None:
    drawn = drawn_here(monkeypatch)
    page = django_code(staff, LIST)
    assert drawn == []
    assert payments[-1].oid in page


def test_a_popup_gets_djangos_drawing(
    staff: Client, payments: list[Payment], monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn = drawn_here(monkeypatch)
    page = page_of(staff, LIST + "?_popup=1")
    assert drawn == []
    assert "data-popup-opener" in page


def test_a_broken_row_drawing_fails_the_comparison(
    staff: Client, payments: list[Payment], monkeypatch: pytest.MonkeyPatch, django_code: Any
) -> None:
    """The comparison sees a drawing that differs from Django's (here, one cell's class)."""
    original = cmi_admin_list.draw_rows

    def broken(cl: Any) -> Any:
        rows = original(cl)
        return None if rows is None else [type(row)(row.replace("nowrap", "")) for row in rows]

    monkeypatch.setattr(cmi_admin_list, "draw_rows", broken)
    assert page_of(staff, LIST) != django_code(staff, LIST)


def test_today_is_shown_in_the_sites_time_zone(
    staff: Client, payments: list[Payment], settings: Any, monkeypatch: Any, django_code: Any
) -> None:
    settings.LANGUAGE_CODE = "fr"
    Payment.objects.filter(pk=payments[0].pk).update(created_at=timezone.now())
    drawn = drawn_here(monkeypatch)
    ours = page_of(staff, LIST)
    assert drawn
    assert_same(ours, django_code(staff, LIST))


def test_the_list_reads_only_its_columns(
    staff: Client, payments: list[Payment], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The payments are read without their JSON fields; the detail page reads them all."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        page = page_of(staff, LIST)
    rows = [q["sql"] for q in queries.captured_queries if '"request_fields"' in q["sql"]]
    assert rows == []
    assert payments[-1].oid in page
    with CaptureQueriesContext(connection) as queries:
        page_of(staff, f"/admin/cmi_django/payment/{payments[-1].pk}/change/")
    assert any('"request_fields"' in q["sql"] for q in queries.captured_queries)


def test_a_subclass_with_other_columns_reads_every_column(
    staff: Client, payments: list[Payment], settings: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    class OtherColumns(cmi_admin.PaymentAdmin):
        list_display = ("oid", "email", "amount")

    settings.ROOT_URLCONF = site_urls(OtherColumns)
    with CaptureQueriesContext(connection) as queries:
        page_of(staff, LIST)
    reads = [q["sql"] for q in queries.captured_queries if 'FROM "cmi_django_payment"' in q["sql"]]
    assert any('"request_fields"' in sql for sql in reads)
    assert len(queries.captured_queries) < 20  # no read of a deferred column per row


def test_midnight_and_noon_as_django_writes_them(
    staff: Client,
    payments: list[Payment],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_code: Any,
) -> None:
    settings.LANGUAGE_CODE = "en"
    drawn = drawn_here(monkeypatch)
    ours = page_of(staff, LIST + "?o=6")
    assert drawn
    assert '<td class="field-created_at nowrap">Jan. 12, 2026, midnight</td>' in ours
    assert '<td class="field-created_at nowrap">Jan. 11, 2026, noon</td>' in ours
    assert_same(ours, django_code(staff, LIST + "?o=6"))


def test_a_date_format_with_a_time_zone_is_djangos(
    staff: Client,
    payments: list[Payment],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_code: Any,
) -> None:
    """A format that writes the time zone (``T``) is written by Django's ``localize``; one
    with escaped letters and ordinals piece by piece as Django writes it."""
    original = cmi_admin_list.formats.get_format

    for written in (r"D j M Y H:i T", r"l jS \o\f F Y, \a\t g:i:s A"):

        def get_format(name: str, *args: Any, fmt: str = written, **kwargs: Any) -> Any:
            return fmt if name == "DATETIME_FORMAT" else original(name, *args, **kwargs)

        monkeypatch.setattr(cmi_admin_list.formats, "get_format", get_format)
        drawn = drawn_here(monkeypatch)
        ours = page_of(staff, LIST)
        assert drawn
        assert_same(ours, django_code(staff, LIST))
    assert " of January 2026, at " in ours


@pytest.mark.parametrize("lang", ["fr", "en", "ar"])
def test_the_languages_date_formats_are_written_piece_by_piece(lang: str) -> None:
    """The byte-for-byte tests above compare the piecewise dates, not Django's fallback."""
    with translation.override(lang):
        dates = cmi_admin_list._Dates()
        assert dates.exact
        when = datetime.datetime(2026, 1, 10, 22, 30, tzinfo=datetime.UTC)
        assert dates(when) == formats.localize(timezone.template_localtime(when))
        assert dates.days  # the date's pieces were kept


def test_a_search_holding_the_links_placeholder_gets_djangos_links(
    staff: Client, payments: list[Payment], monkeypatch: pytest.MonkeyPatch, django_code: Any
) -> None:
    """The page's link is cut around a placeholder key; a search (kept in every row's
    link) that holds the placeholder leaves it uncut, and Django draws the rows."""
    Payment.objects.filter(pk=payments[0].pk).update(
        reference=f"x{cmi_admin_list.KEY_PLACEHOLDER}x"
    )
    query = f"?q={cmi_admin_list.KEY_PLACEHOLDER}"
    drawn = drawn_here(monkeypatch)
    ours = page_of(staff, LIST + query)
    assert drawn == []
    assert payments[0].oid in ours
    assert_same(ours, django_code(staff, LIST + query))
