"""The payments list's statements, fourth pass (issue 16, goal 4): fewer and cheaper, the
page the same.

- The sidebar's explorer start page (Wagtail's ``explorable_root_instance``, kept on the
  user for the request) found for a superuser in one statement instead of Wagtail's two:
  the same page (every field), None where Wagtail finds None (two roots), nothing primed
  for other staff or over a value Wagtail already found; the list's page the same with
  and without it.
- The bounded count in one statement written around the queryset's own condition: the
  same number as Django's count for each filter (hostile search text included), None
  (Django counts) for anything but a plain filter of the payments' table.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from cmi_django.models import Payment
from cmi_wagtail import viewsets
from cmi_wagtail.templatetags import cmi_wagtail_chrome as chrome
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from wagtail import VERSION as WAGTAIL_VERSION
from wagtail.models import Page

from tests.adapters.staff_lists import fill

try:
    from wagtail.permissions import policy_registry
except ImportError:  # Wagtail 7.0: no registry, Wagtail finds the start page itself
    policy_registry = None

pytestmark = pytest.mark.django_db
#: The explorer's start page is found in one statement only on a Wagtail with the
#: permission policies' registry (8.0 and later); on 7.0 Wagtail's own code runs.
needs_registry = pytest.mark.skipif(
    policy_registry is None, reason="Wagtail 7.0: no permission policy registry"
)
#: The range widgets are drawn in Python only while the templates are Wagtail 8's (on
#: 7.0 Wagtail's own widgets and templates, which differ, are used as they are).
needs_wagtail_8 = pytest.mark.skipif(
    WAGTAIL_VERSION[:2] < (8, 0), reason="Wagtail 7: its own range widgets are drawn"
)

INDEX = "/admin/cmi_payments/"
CACHE = "_explorable_root_page_cache"


@pytest.fixture
def boss(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("boss", "boss@example.ma", "pw")


def fresh(user: Any) -> Any:
    """The user as a new request loads it (nothing kept on it)."""
    return type(user).objects.get(pk=user.pk)


def wagtails_root(user: Any) -> Any:
    """What Wagtail's own code finds, on a fresh copy of the user."""
    return policy_registry.get_by_type(Page).explorable_root_instance(fresh(user))


def fields(page: Any) -> list[Any]:
    return [getattr(page, field.attname) for field in type(page)._meta.concrete_fields]


@needs_registry
def test_a_superusers_root_is_wagtails_in_one_statement(boss: Any) -> None:
    user = fresh(boss)
    with CaptureQueriesContext(connection) as captured:
        assert chrome.prime_explorable_root(user)
    assert len(captured.captured_queries) == 1
    ours, theirs = getattr(user, CACHE), wagtails_root(boss)
    assert ours is not None
    assert type(ours) is type(theirs)
    assert fields(ours) == fields(theirs)
    assert ours.depth == 1
    # Wagtail's code reads what was primed: no statement more.
    with CaptureQueriesContext(connection) as captured:
        assert policy_registry.get_by_type(Page).explorable_root_instance(user) is ours
    assert captured.captured_queries == []


@needs_registry
def test_two_roots_have_no_common_ancestor_as_in_wagtail(boss: Any) -> None:
    Page.add_root(instance=Page(title="Another tree", slug="another-tree"))
    assert Page.objects.filter(depth=1).count() == 2
    user = fresh(boss)
    assert chrome.prime_explorable_root(user)
    assert getattr(user, CACHE) is None
    assert wagtails_root(boss) is None


@needs_registry
def test_other_staff_and_found_roots_are_left_to_wagtail(boss: Any, django_user_model: Any) -> None:
    staff = django_user_model.objects.create_user("clerk", "clerk@example.ma", "pw")
    staff.user_permissions.add(Permission.objects.get(codename="access_admin"))
    assert not chrome.prime_explorable_root(staff)
    assert not hasattr(staff, CACHE)
    inactive = fresh(boss)
    inactive.is_active = False
    assert not chrome.prime_explorable_root(inactive)
    user = fresh(boss)
    marker = object()
    setattr(user, CACHE, marker)
    assert not chrome.prime_explorable_root(user)
    assert getattr(user, CACHE) is marker


def test_another_wagtail_is_left_to_itself(boss: Any, monkeypatch: Any) -> None:
    chrome._explorable_root_read.cache_clear()
    monkeypatch.setattr(chrome, "EXPLORABLE_ROOT_SHA256", frozenset({"another release"}))
    try:
        user = fresh(boss)
        assert not chrome.prime_explorable_root(user)
        assert not hasattr(user, CACHE)
    finally:
        chrome._explorable_root_read.cache_clear()


def masked(html: str) -> str:
    return re.sub(r'(csrfmiddlewaretoken" value="|"CSRF_TOKEN": ")[^"]+', r"\1-", html)


@needs_registry
def test_the_list_is_the_same_page_with_one_statement_less(boss: Any, monkeypatch: Any) -> None:
    fill(30, platform="wagtail", reference="11", title="Adhésion")
    client = Client()
    client.force_login(boss)
    client.get(INDEX)
    with CaptureQueriesContext(connection) as primed:
        ours = client.get(INDEX)
    monkeypatch.setattr(viewsets, "prime_explorable_root", lambda user: False)
    with CaptureQueriesContext(connection) as unprimed:
        theirs = client.get(INDEX)
    assert ours.status_code == theirs.status_code == 200
    assert masked(ours.content.decode()) == masked(theirs.content.decode())
    assert len(primed.captured_queries) == len(unprimed.captured_queries) - 1
    # The results alone (a filter changed) draw no sidebar: nothing primed, nothing read.
    with CaptureQueriesContext(connection) as results:
        client.get(INDEX + "results/")
    assert not any("wagtailcore_page" in q["sql"] and '"depth"' in q["sql"] for q in results)


def bounded(queryset: Any, most: int) -> int:
    """Django's count of ``queryset``, stopped at ``most`` (what BoundedPaginator asks)."""
    return int(queryset.order_by().values("pk")[:most].count())


@pytest.mark.parametrize(
    "condition",
    [
        {},
        {"platform": "wagtail"},
        {"platform": "wagtail", "state": "captured"},
        {"platform": "wagtail", "amount__gte": Decimal("150"), "amount__lte": Decimal("400")},
        {"platform": "wagtail", "reference": "12"},
        {"platform": "wagtail", "oid__icontains": "%_'\"; DROP TABLE x; --"},
        {"platform": "wagtail", "email__icontains": "50%"},
        {"platform": "nobody"},
    ],
)
def test_the_count_is_djangos(condition: dict[str, Any]) -> None:
    fill(25, platform="wagtail", reference="11")
    fill(15, platform="wagtail", reference="12")
    fill(5, platform="oscar", reference="13")
    Payment.objects.filter(reference="12").update(amount=Decimal("300.00"), email="x50%@a.ma")
    Payment.objects.filter(pk__in=Payment.objects.values("pk")[:7]).update(state="authorised")
    queryset = Payment.objects.filter(**condition)
    for most in (1, 10, 26, 1000):
        assert viewsets._count_up_to(queryset, most) == bounded(queryset, most)


def test_what_the_count_does_not_write_is_left_to_django() -> None:
    fill(3, platform="wagtail")
    assert viewsets._count_up_to(Payment.objects.none(), 10) == 0
    assert viewsets._count_up_to([1, 2], 10) is None
    for queryset in (
        Payment.objects.filter(callbacks__id__gt=0),
        Payment.objects.distinct(),
        Payment.objects.all()[:2],
        Payment.objects.annotate(n=Payment.objects.none().values("pk")[:1]),
    ):
        assert viewsets._count_up_to(queryset, 10) is None


def test_the_list_says_more_than_the_limit(boss: Any, settings: Any) -> None:
    settings.CMI_STAFF_LIST_LIMIT = 100
    fill(101, platform="wagtail", reference="11")
    fill(3, platform="oscar", reference="13")
    client = Client()
    client.force_login(boss)
    html = " ".join(client.get(INDEX).content.decode().split())
    assert "Plus de 100 paiements correspondent : les 100 plus récents sont affichés" in html
    assert "Page 1 sur 5" in html
    Payment.objects.filter(platform="wagtail").first().delete()  # exactly the limit now
    html = " ".join(client.get(INDEX).content.decode().split())
    assert "Plus de 100" not in html
    assert "Page 1 sur 5" in html
    assert "100 paiements" in html


RANGE_VALUES: list[Any] = [
    None,
    "",
    ["2026-01-02", "2026-12-31"],
    ["2026-01-02", None],
    slice("2026-01-01", "<x>"),
    ["\"><script>alert('x')</script>", "a&b"],
    [Decimal("150.50"), 0],
    ["-1", "1e3"],
]


@needs_wagtail_8
@pytest.mark.parametrize("language", ["fr", "en", "ar"])
@pytest.mark.parametrize("value", RANGE_VALUES)
def test_the_range_widgets_write_what_wagtails_templates_write(
    value: Any, language: str, settings: Any
) -> None:
    from django.utils import translation
    from wagtail.admin.filters import DateRangePickerWidget, NumberRangeWidget

    pairs = [
        (viewsets.PlainDateRangeWidget, DateRangePickerWidget, "created_at"),
        (viewsets.PlainNumberRangeWidget, NumberRangeWidget, "amount"),
    ]
    with translation.override(language):
        for ours, theirs, name in pairs:
            for attrs in ({"id": "id_" + name}, None, {"id": 'i"d', "required": True}):
                mine = ours().render(name, value, attrs)
                wagtails = theirs().render(name, value, attrs)
                assert mine == wagtails
                assert type(mine) is type(wagtails)
    settings.WAGTAIL_DATE_FORMAT = "%d.%m.%Y"
    assert viewsets.PlainDateRangeWidget().render("d", None, {"id": "d"}) == (
        DateRangePickerWidget().render("d", None, {"id": "d"})
    )


@needs_wagtail_8
def test_a_site_template_for_an_input_is_used(monkeypatch: Any) -> None:
    from django.forms.renderers import get_default_renderer

    viewsets._range_templates_known.cache_clear()
    monkeypatch.setitem(viewsets._RANGE_TEMPLATES, "django/forms/widgets/input.html", "a site's")
    try:
        calls: list[str] = []
        renderer = get_default_renderer()
        original = type(renderer).render

        def render(self: Any, template_name: str, context: Any, request: Any = None) -> Any:
            calls.append(template_name)
            return original(self, template_name, context, request)

        monkeypatch.setattr(type(renderer), "render", render)
        viewsets.PlainNumberRangeWidget().render("amount", None, {"id": "a"})
        assert calls == ["wagtailadmin/widgets/range_input.html"]
    finally:
        viewsets._range_templates_known.cache_clear()


@needs_wagtail_8
def test_the_list_with_filters_is_the_same_page(boss: Any, monkeypatch: Any) -> None:
    from wagtail.admin.filters import DateRangePickerWidget, NumberRangeWidget

    fill(12, platform="wagtail", reference="11", title="Adhésion")
    client = Client()
    client.force_login(boss)
    url = INDEX + "?created_at_from=2000-01-01&created_at_to=&amount_min=10&amount_max=%22%3E"
    ours = client.get(url)
    for plain, theirs in (
        (viewsets.PlainDateRangeWidget, DateRangePickerWidget),
        (viewsets.PlainNumberRangeWidget, NumberRangeWidget),
    ):
        monkeypatch.setattr(plain, "render", theirs.render)
    wagtails = client.get(url)
    assert ours.status_code == wagtails.status_code == 200
    assert masked(ours.content.decode()) == masked(wagtails.content.decode())
    assert 'initDateChooser("id_created_at_0"' in ours.content.decode()


def test_amounts_formatted_once_a_render_are_the_amounts(boss: Any, monkeypatch: Any) -> None:
    from cmi_django.display import format_money
    from cmi_django.i18n import isolate
    from cmi_wagtail.viewsets import PaymentIndexView
    from wagtail.users.models import UserProfile

    UserProfile.get_for_user(boss)
    fill(4, platform="wagtail", reference="11")
    amounts = [Decimal("250"), Decimal("250.00"), Decimal("99.5"), Decimal("1234567.891")]
    for payment, amount in zip(Payment.objects.order_by("id"), amounts, strict=True):
        payment.amount = amount
        payment.currency = "788" if amount == Decimal("99.5") else "504"  # TND: 3 decimals
        payment.save()
    calls: list[Any] = []

    def counted(amount: Any, currency: Any, locale: Any = None) -> str:
        calls.append(amount)
        return format_money(amount, currency, locale)

    monkeypatch.setattr("cmi_wagtail.viewsets.format_money", counted)
    for language in ("fr", "ar"):
        UserProfile.objects.filter(user=boss).update(preferred_language=language)
        client = Client()
        client.force_login(boss)
        calls.clear()
        ours = client.get(INDEX).content.decode()
        assert len(calls) == 3  # 250 and 250.00 are one amount
        monkeypatch.setattr(
            PaymentIndexView, "_money", lambda self, a, c: isolate(format_money(a, c))
        )
        theirs = client.get(INDEX).content.decode()
        monkeypatch.undo()
        monkeypatch.setattr("cmi_wagtail.viewsets.format_money", counted)
        assert masked(ours) == masked(theirs)
        assert "99,500" in ours or "99.500" in ours or "٩٩" in ours


def test_a_site_page_manager_is_left_to_wagtail(boss: Any, monkeypatch: Any) -> None:
    from wagtail.models import PageManager

    class SiteManager(PageManager):  # type: ignore[misc,valid-type]
        """A site's manager (it might hide pages): not the one read."""

    manager = SiteManager()
    manager.model = Page
    monkeypatch.setattr(Page, "objects", manager)
    user = fresh(boss)
    assert not chrome.prime_explorable_root(user)
    assert not hasattr(user, CACHE)


def test_amounts_equal_by_value_are_one_and_others_apart() -> None:
    from cmi_wagtail.viewsets import PaymentIndexView

    view = PaymentIndexView()
    nan = view._money(Decimal("NaN"), "504")  # never equal to itself: formatted each time
    assert nan == viewsets.isolate(viewsets.format_money(Decimal("NaN"), "504"))
    assert view._money(Decimal("NaN"), "504") == nan
    assert view._money(Decimal("250.001"), "504") != view._money(Decimal("250.009"), "504")
    assert view._money(Decimal("250.000"), "788") != view._money(Decimal("250.000"), "504")
    assert view._money(Decimal("250.00"), "504") == view._money(Decimal("250"), "504")
