"""Oscar's dashboard list of CMI payments at any table size (issue 16, goal 4).

Each render is captured: every statement over ``cmi_django_payment`` ends in a ``LIMIT``
(or counts a subquery that does); the statements do not grow with the payments; past
``CMI_STAFF_LIST_LIMIT`` the list says the newest are shown; the date filter is a range
on ``created_at`` (the index), and keeps whole days.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from cmi_django.models import Payment
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.adapters import staff_lists
from tests.adapters.staff_lists import fill, payment_queries, unbounded

pytestmark = pytest.mark.django_db


def render(client: Client, query: dict[str, str]) -> tuple[str, list[dict[str, Any]]]:
    return staff_lists.render(client, reverse("cmi_oscar_dashboard:cmi-payment-list"), query)


TODAY = timezone.localdate().isoformat()


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"page": "2"},
        {"state": "captured"},
        {"order_number": "1"},
        {"date_from": "2000-01-01", "date_to": TODAY},
    ],
)
def test_list_reads_payments_through_limits_only(staff: Client, query: dict[str, str]) -> None:
    fill(60, platform="oscar")
    fill(60, platform="wagtail")
    html, queries = render(staff, query)
    assert 'id="cmi-payment-table"' in html
    assert payment_queries(queries), "the list read no payment: the check saw nothing"
    assert unbounded(queries) == []


def test_list_costs_the_same_statements_at_any_size(staff: Client) -> None:
    fill(30, platform="oscar")
    _, small = render(staff, {})
    fill(600, platform="oscar")
    _, large = render(staff, {"page": "3"})
    assert len(large) == len(small)


def test_list_past_the_limit_shows_the_newest(staff: Client, settings: Any) -> None:
    settings.CMI_STAFF_LIST_LIMIT = 100
    fill(130, platform="oscar")
    html, _ = render(staff, {"page": "4"})
    assert "Page 4 of 4" in " ".join(html.split())
    assert 'id="cmi-list-truncated"' in html
    assert "More than 100 payments match: the newest 100 are listed." in " ".join(html.split())
    oldest_shown = Payment.objects.order_by("-created_at", "-id")[99]
    assert oldest_shown.oid in html
    assert (
        staff.get(reverse("cmi_oscar_dashboard:cmi-payment-list"), {"page": "5"}).status_code == 404
    )
    html, _ = render(staff, {"state": "redirected"})
    assert 'id="cmi-list-truncated"' not in html


def test_date_filter_keeps_whole_days(staff: Client) -> None:
    fill(2, platform="oscar")
    old, new = Payment.objects.order_by("id")
    yesterday = timezone.localtime() - datetime.timedelta(days=1)
    Payment.objects.filter(pk=old.pk).update(created_at=yesterday.replace(hour=23, minute=59))
    day = yesterday.date().isoformat()
    html, _ = render(staff, {"date_from": day, "date_to": day})
    assert old.oid in html
    assert new.oid not in html
    html, _ = render(staff, {"date_from": TODAY})
    assert (old.oid in html, new.oid in html) == (False, True)


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("fr", "Plus de 100 paiements correspondent : les 100 plus récents sont affichés."),
        ("ar", "أكثر من 100 دفعة مطابقة: تُعرض أحدث 100."),
    ],
)
def test_list_past_the_limit_says_more_than_in_the_language(
    staff: Client, settings: Any, language: str, text: str
) -> None:
    settings.CMI_STAFF_LIST_LIMIT = 100
    fill(130, platform="oscar")
    response = staff.get(
        reverse("cmi_oscar_dashboard:cmi-payment-list"), HTTP_ACCEPT_LANGUAGE=language
    )
    assert text in " ".join(response.content.decode().split())
