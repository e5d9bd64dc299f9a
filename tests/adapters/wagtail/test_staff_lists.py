"""Wagtail's admin list of payments at any table size (issue 16, goal 4).

Each render (the index and its results view) is captured: every statement over
``cmi_django_payment`` ends in a ``LIMIT`` (or counts a subquery that does): the "Page"
filter's choices come through the payments' index and the pages table, not a
``DISTINCT`` over every payment; the statements do not grow with the payments.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import Any

import pytest
from cmi_django.models import Payment
from cmi_wagtail.templatetags import cmi_wagtail_chrome as chrome
from cmi_wagtail.viewsets import PlainColumn, PlainTitleColumn
from django import forms
from django.db import connection
from django.template import Context
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import html as django_html
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy
from wagtail.admin.ui.tables import Column, Table, TitleColumn
from wagtail.models import Site
from wagtail.users.models import UserProfile

from tests.adapters.staff_lists import fill, payment_queries, render, unbounded

pytestmark = pytest.mark.django_db

INDEX = "/admin/cmi_payments/"


@pytest.fixture
def admin_client(client: Client, django_user_model: Any) -> Client:
    user = django_user_model.objects.create_superuser("boss", "boss@example.ma", "pw")
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "url",
    [
        INDEX,
        INDEX + "?p=2",
        INDEX + "results/?p=3",
        INDEX + "?page=11",
        INDEX + "?state=captured&created_at_from=2000-01-01",
        INDEX + "?ordering=created_at",
    ],
)
def test_list_reads_payments_through_limits_only(admin_client: Client, url: str) -> None:
    fill(40, platform="wagtail", reference="11", title="Adhésion")
    fill(40, platform="wagtail", reference="12", title="Don")
    fill(40, platform="oscar", reference="13")
    html, queries = render(admin_client, url)
    assert "<table" in html
    assert payment_queries(queries), "the list read no payment: the check saw nothing"
    assert unbounded(queries) == []


def test_list_costs_the_same_statements_at_any_size(admin_client: Client) -> None:
    fill(20, platform="wagtail", reference="11")
    fill(20, platform="wagtail", reference="12")
    _, small = render(admin_client, INDEX)
    fill(600, platform="wagtail", reference="11")
    fill(300, platform="wagtail", reference="12")
    _, large = render(admin_client, INDEX + "?p=5")
    assert len(large) == len(small)


def test_page_filter_offers_the_pages_that_took_payments(admin_client: Client, site: Site) -> None:
    root = site.root_page
    root.title = "Page d'accueil"
    root.save()
    fill(3, platform="wagtail", reference=str(root.pk), title="Old title")
    fill(3, platform="wagtail", reference="999999", title="Page supprimée")
    fill(3, platform="oscar", reference="777777", title="Oscar basket")
    fill(1, platform="wagtail", reference="9" * 30, title="Beyond an integer")
    html, _ = render(admin_client, INDEX)
    assert "Beyond an integer" in html  # not looked up as a page id: no database error
    assert f'value="{root.pk}"' in html
    assert "Page d&#x27;accueil" in html  # the page's current title, from the pages table
    assert "Page supprimée" in html  # a deleted page: the title its payments recorded
    assert 'value="777777"' not in html  # another platform's reference
    filtered, _ = render(admin_client, f"{INDEX}?page=999999")
    assert all(
        oid in filtered
        for oid in Payment.objects.filter(reference="999999").values_list("oid", flat=True)
    )
    assert not any(
        oid in filtered
        for oid in Payment.objects.filter(reference=str(root.pk)).values_list("oid", flat=True)
    )


def test_list_past_the_limit_says_the_newest_are_listed(
    admin_client: Client, settings: Any
) -> None:
    settings.CMI_STAFF_LIST_LIMIT = 100
    fill(130, platform="wagtail")
    html, _ = render(admin_client, INDEX + "?p=5")  # 20 a page: page 5 is the last
    footer = " ".join(html.split())
    assert "Plus de 100 paiements correspondent : les 100 plus récents sont affichés" in footer
    assert Payment.objects.order_by("-created_at", "-id")[99].oid in html
    assert Payment.objects.order_by("-created_at", "-id")[100].oid not in html


def test_only_the_date_sorts(admin_client: Client) -> None:
    fill(30, platform="wagtail")
    html, _ = render(admin_client, INDEX)
    assert "ordering=created_at" in html
    assert "ordering=amount" not in html
    assert "ordering=oid" not in html
    newest_first = list(Payment.objects.order_by("created_at", "id").values_list("oid", flat=True))
    html, _ = render(admin_client, INDEX + "?ordering=amount")  # ignored: newest first
    assert newest_first[-1] in html
    html, _ = render(admin_client, INDEX + "?ordering=created_at")
    assert newest_first[0] in html
    assert newest_first[-1] not in html


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.parametrize(
    ("language", "heading"),
    [
        ("fr", "Il y a plus de 100 correspondances"),
        ("en", "There are more than 100 matches"),
        ("ar", "هناك أكثر من 100 نتيجة مطابقة"),
    ],
)
def test_filtered_list_past_the_limit_says_more_than_the_limit(
    admin_client: Client, settings: Any, django_user_model: Any, language: str, heading: str
) -> None:
    settings.CMI_STAFF_LIST_LIMIT = 100
    profile = UserProfile.get_for_user(django_user_model.objects.get(username="boss"))
    profile.preferred_language = language
    profile.save()
    fill(130, platform="wagtail")
    html, _ = render(admin_client, INDEX + "?state=captured")
    assert heading in _text(html)
    html, _ = render(admin_client, INDEX + "results/?state=captured")  # the filters' refresh
    assert heading in _text(html)


def test_filtered_list_under_the_limit_counts_exactly(admin_client: Client, settings: Any) -> None:
    settings.CMI_STAFF_LIST_LIMIT = 100
    fill(100, platform="wagtail")
    html, _ = render(admin_client, INDEX + "?state=captured")
    text = _text(html)
    assert "100 correspondances" in text
    assert "plus de" not in text


def test_rows_are_written_without_a_template_per_cell(admin_client: Client) -> None:
    fill(3, platform="wagtail")
    admin_client.get(INDEX)  # the page's kept parts drawn: both pages below reuse them
    few = admin_client.get(INDEX)
    fill(40, platform="wagtail")
    many = admin_client.get(INDEX)  # a full page: 20 rows
    names = [template.name for template in many.templates]
    assert "wagtailadmin/tables/cell.html" not in names
    assert "wagtailadmin/tables/title_cell.html" not in names
    # 17 more rows, not one more template: the table is written in Python (before: a
    # template per row for its attributes, earlier still one per cell and a menu per row).
    assert len(many.templates) == len(few.templates)
    html = many.content.decode()
    assert 'data-controller="w-dropdown"' not in html.split("<tbody>")[1]  # no row menus
    listed = Payment.objects.order_by("-created_at", "-id")[:20]
    for payment in listed:  # each row's link, the detail URL built once for the list
        url = reverse("cmi_payments:inspect", args=[payment.pk])
        assert f'<a href="{url}">{payment.oid}</a>' in html
    assert html.split("<tbody>")[1].count("<tr>") == 20


def test_rows_and_options_are_escaped_without_djangos_lazy_steps(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each cell and each option of the filters' selects is escaped once, by the standard
    library: Django's ``escape`` (reached through ``conditional_escape`` and
    ``format_html``, each with its checks for lazy text) runs as often for a page of 20
    rows and five pages to filter by as for 3 rows and one page."""
    calls: list[Any] = []
    escape = django_html.escape
    # the filters' drawer drawn on both pages (the second offers other pages: another key)
    monkeypatch.setattr(chrome._DRAWERS, "largest", -1)
    fill(3, platform="wagtail", reference="11", title="Adhésion")
    admin_client.get(INDEX)  # the page's other kept parts drawn: both pages reuse them
    monkeypatch.setattr(django_html, "escape", lambda text: calls.append(text) or escape(text))
    html = admin_client.get(INDEX).content.decode()
    few = len(calls)
    assert html.split("<tbody>")[1].count("<tr>") == 3
    for reference in ("12", "13", "14", "15"):  # 17 more rows, four more pages to offer
        fill(4 if reference != "15" else 5, platform="wagtail", reference=reference)
    calls.clear()
    html = admin_client.get(INDEX).content.decode()
    assert html.split("<tbody>")[1].count("<tr>") == 20
    assert html.count('<option value="1') >= 5  # the five pages are offered
    assert few > 0, "the page escaped nothing through Django: the count saw nothing"
    assert len(calls) == few


def test_rows_read_what_the_columns_show_and_the_csv_reads_all(admin_client: Client) -> None:
    """The page's statement reads the fields its columns show, not each payment's kept
    CMI request or card details, and no field later, one statement a row; the CSV still
    reads whole rows in one statement."""
    fill(3, platform="wagtail")
    few, few_queries = render(admin_client, INDEX)
    fill(22, platform="wagtail")
    html, queries = render(admin_client, INDEX)
    assert len(queries) == len(few_queries)  # 17 more rows, not one more statement
    rows = [sql for sql in payment_queries(queries) if '"oid"' in sql and "ORDER BY" in sql]
    assert len(rows) == 1, rows
    for left_out in ("request_fields", "masked_pan", "trans_id"):
        assert left_out not in rows[0]
    assert '"data"' in rows[0]  # the page title and the payer are read from it
    assert html.split("<tbody>")[1].count("<tr>") == 20
    assert few.split("<tbody>")[1].count("<tr>") == 3
    assert "Payer" in html  # the payer's name, from the data read
    counts = []
    for more in (0, 10):  # no statement per row when the CSV writes every column
        fill(more, platform="wagtail")
        with CaptureQueriesContext(connection) as captured:
            response = admin_client.get(INDEX + "?export=csv")
            csv = b"".join(response.streaming_content).decode()
        assert csv.count("\n") == 26 + more
        counts.append(len(payment_queries(captured.captured_queries)))
    assert counts[0] == counts[1]


def test_a_column_the_list_does_not_know_reads_every_field(rf: Any) -> None:
    """A subclass's column that is no field (what it reads is unknown): every field is
    read, rather than one statement a row for a field left out."""
    from cmi_wagtail.viewsets import PaymentIndexView

    view = PaymentIndexView()
    view.list_display = ["oid", "amount", "payer"]
    assert view.list_fields() == ["amount", "created_at", "currency", "data", "email", "id", "oid"]
    view.list_display = ["oid", "summary"]
    assert view.list_fields() is None


def test_table_is_the_markup_wagtails_template_writes(rf: Any) -> None:
    """The list's table against Wagtail's own ``Table`` over the same columns and rows:
    caption, widths, classes, row attributes, headers (sorting or not) and cells, text to
    escape: every column ours against Wagtail's own column class."""
    from cmi_wagtail.viewsets import PaymentTable

    fill(3, platform="wagtail", title='Don <b>&</b> "Zakat"')
    payments = list(Payment.objects.order_by("-id"))

    def columns(column: type, title: type) -> list[Any]:
        return [
            title("oid", get_url=lambda p: f"/detail/{p.pk}/?a=1&b=2", width="30%"),
            column("page_title", accessor=lambda p: p.data["page_title"], classname="w-x"),
            column("amount", label="Montant <HT>", classname="w-a&b"),
            column("created_at", sort_key="created_at"),  # a sorting header: Wagtail's
            Column("state", width="10%"),  # a column still drawn by Wagtail's templates
        ]

    class Striped:
        header_row_classname = "w-head"

        def get_caption(self) -> str:
            return "Payments <all>"

        def get_row_attrs(self, instance: Any) -> dict[str, Any]:
            return {"data-id": f'{instance.pk}"', "hidden": instance.pk % 2 == 0}

    kwargs: dict[str, Any] = {"attrs": {"id": "t&1"}, "ordering": "-created_at"}
    ours = type("Ours", (Striped, PaymentTable), {})(
        columns(PlainColumn, PlainTitleColumn), payments, **kwargs
    )
    wagtails = type("Theirs", (Striped, Table), {})(
        columns(Column, TitleColumn), payments, **kwargs
    )
    context = Context({"request": rf.get(INDEX)})
    expected = _cells(str(wagtails.render_html(context)))
    assert "Don &lt;b&gt;&amp;&lt;/b&gt;" in expected  # the test sees escaped text
    assert "Montant &lt;HT&gt;" in expected
    assert "ordering=created_at" in expected
    assert _cells(ours.render_html(context)) == expected


def test_filters_form_is_built_once_and_reads_the_pages_each_time(
    admin_client: Client, site: Site
) -> None:
    from cmi_wagtail.viewsets import PaymentFilterSet

    fill(5, platform="wagtail", reference="11", title="Adhésion")
    first, _ = render(admin_client, INDEX)
    assert "Adhésion" in first
    # A payment for a page the list has not offered yet: the next render offers it.
    fill(1, platform="wagtail", reference="12", title="Don du mois")
    second, _ = render(admin_client, INDEX)
    assert "Don du mois" in second
    assert 'value="12"' in second
    form_class = PaymentFilterSet(queryset=Payment.objects.none()).get_form_class()
    assert PaymentFilterSet(queryset=Payment.objects.none()).get_form_class() is form_class
    # Each form has its own fields: this render's page choices stay out of the next.
    one = PaymentFilterSet(queryset=Payment.objects.none()).form
    one.fields["page"].choices = [("x", "Only this form")]
    other = PaymentFilterSet(queryset=Payment.objects.none()).form
    assert ("x", "Only this form") not in list(other.fields["page"].choices)


@pytest.mark.parametrize(
    ("language", "labels", "absent"),
    [
        ("en", ["State", "Minimum", "Date from"], "État"),
        ("fr", ["État", "Minimum", "Date depuis le"], "State"),
        ("ar", ["الحالة"], "État"),
    ],
)
def test_filters_speak_each_users_language_from_one_form_class(
    admin_client: Client, django_user_model: Any, language: str, labels: list[str], absent: str
) -> None:
    fill(3, platform="wagtail", reference="11")
    render(admin_client, INDEX)  # the form class is built in French first
    profile = UserProfile.get_for_user(django_user_model.objects.get(username="boss"))
    profile.preferred_language = language
    profile.save()
    html, _ = render(admin_client, INDEX)
    drawer = html.split('id="filters-drilldown"')[1].split("</form>")[0]
    for label in labels:
        assert label in drawer, label
    assert absent not in drawer


def _cells(html: str) -> str:
    return re.sub(r"\s*(<[^>]+?)\s*>\s*", r"\1>", " ".join(html.split()))


@pytest.mark.parametrize(
    "value",
    [
        "Don <script>alert('x')</script> & \"Zakat\"",
        "تبرع",
        "",
        "   ",
        None,
        12345678,
        Decimal("1234.50"),
        datetime.datetime(2026, 3, 1, 23, 30, tzinfo=datetime.UTC),
        gettext_lazy("State"),  # lazy text: translated, then escaped
        mark_safe("<bdi>100002-1</bdi> & co"),
        True,
    ],
)
def test_cells_are_the_markup_wagtails_templates_write(value: Any, settings: Any) -> None:
    link = "/admin/cmi_payments/inspect/1/?a=1&b=<2>"
    settings.USE_THOUSAND_SEPARATOR = True  # integers must still print unlocalised
    context = Context({"row": None, "table": None, "request": None})
    for classname in (None, "w-text-end"):
        ours = PlainColumn("x", accessor=lambda _: value, classname=classname)
        wagtails = Column("x", accessor=lambda _: value, classname=classname)
        assert _cells(ours.render_cell_html(None, context)) == _cells(
            str(wagtails.render_cell_html(None, context))
        )
        ours_title = PlainTitleColumn(
            "x", accessor=lambda _: value, classname=classname, get_url=lambda _: link
        )
        wagtails_title = TitleColumn(
            "x", accessor=lambda _: value, classname=classname, get_url=lambda _: link
        )
        if value is None:  # Wagtail's title cell prints "None"; ours, "(blank)" as for ""
            blank = str(TitleColumn.empty_value_display)
            assert f">{blank}</a>" in ours_title.render_cell_html(None, context)
            continue
        assert _cells(ours_title.render_cell_html(None, context)) == _cells(
            str(wagtails_title.render_cell_html(None, context))
        )
    with timezone.override("Africa/Casablanca"):
        assert "<script>" not in ours.render_cell_html(None, context)


@pytest.mark.parametrize("use_l10n", [None, True, False])
@pytest.mark.parametrize("language", ["fr", "ar"])
def test_a_date_cell_is_localised_as_its_context_says(use_l10n: Any, language: str) -> None:
    """A date cell prints what ``{{ value }}`` prints in the table's context: the local
    time in the language's format, or the site's format where localisation is off."""
    from django.template.base import render_value_in_context
    from django.utils import translation
    from django.utils.html import conditional_escape

    value = datetime.datetime(2026, 3, 1, 23, 30, tzinfo=datetime.UTC)
    context = Context({"row": None, "table": None, "request": None}, use_l10n=use_l10n)
    with translation.override(language), timezone.override("Africa/Casablanca"):
        expected = conditional_escape(render_value_in_context(value, context))
        cell = PlainColumn("x", accessor=lambda _: value).render_cell_html(None, context)
    assert cell == f"<td>{expected}</td>"


def test_page_filter_reads_its_choices_once(admin_client: Client) -> None:
    fill(30, platform="wagtail", reference="11", title="Adhésion")
    fill(30, platform="wagtail", reference="12", title="Don")
    for url in (INDEX + "?page=11", INDEX + "results/?page=12", INDEX):
        html, queries = render(admin_client, url)
        walks = [sql for sql in payment_queries(queries) if sql.lstrip().startswith("WITH")]
        assert len(walks) == 1, url
        assert "Adhésion" in html or "results/" in url  # the filters' refresh has no form
    for hostile in ("%00", "%27%3B--", "9" * 40, "<script>"):
        response = admin_client.get(f"{INDEX}?page={hostile}")
        assert response.status_code == 200
        assert "<script>" not in response.content.decode().split("<tbody>")[-1]


@pytest.mark.parametrize("value", ["", "2", "<b>", None, "3", "None", 5])
def test_filter_select_is_the_markup_djangos_templates_write(value: Any) -> None:
    """The filters' select (state, page) against Django's own, options and groups, the
    chosen one, attributes and text to escape."""
    from cmi_wagtail.viewsets import PlainSelect

    choices: list[Any] = [
        ("", "---------"),
        ("1", "Adhésion & dons"),
        ("2", 'Page "<script>"'),
        ("<b>", "تبرع"),
        ("Groupe <g>", [("3", "Trois"), ("4", "Quatre"), (None, "Rien")]),
        ("2", "Deux, encore"),  # the same value again: only the first is chosen
        (None, gettext_lazy("State")),  # no value, a lazy label
        (5, mark_safe("<b>Cinq</b>")),
    ]
    attrs = {"id": "id_page", "data-x": 'a"b', "required": True, "disabled": False}
    ours = PlainSelect(attrs=attrs, choices=choices).render("page", value)
    djangos = forms.Select(attrs=attrs, choices=choices).render("page", value)
    assert "&lt;script&gt;" in djangos  # the test sees escaped text
    assert _cells(ours) == _cells(djangos)


@pytest.mark.parametrize("language", ["fr", "en", "ar"])
@pytest.mark.parametrize(("number", "count"), [(1, 10_000), (3, 200), (250, 10_000), (5, 100)])
def test_pagination_is_the_markup_wagtails_template_writes(
    rf: Any, language: str, number: int, count: int
) -> None:
    """The list's pagination against Wagtail's ``pagination_nav.html``: the heading, the
    links (the current query, ``p`` replaced, text to escape), the elided range, the
    current page, the arrows, grouped numbers and the count, in each language."""
    from cmi_wagtail.viewsets import PaymentPaginator, _pagination_html
    from django.template.loader import render_to_string
    from django.utils import translation

    request = rf.get(INDEX, {"state": "captured", "p": str(number), "q": 'a "b" <c>'})
    paginator = PaymentPaginator(list(range(count)), 20)
    page = paginator.page(number)
    with translation.override(language):
        expected = render_to_string(
            "wagtailadmin/shared/pagination_nav.html",
            {
                "items": page,
                "elided_page_range": paginator.get_elided_page_range(number),
                "linkurl": INDEX,
                "request": request,
            },
        )
        ours = _pagination_html(request, page, paginator.get_elided_page_range(number), INDEX)
    assert "q=a+%22b%22+%3Cc%3E" in expected  # the test sees the query kept
    assert _cells(ours) == _cells(expected)
