"""The Django admin's payment list at any table size: no statement reads every payment.

Issue 16, goal 4 (the figures: ``benchmarks/bench_staff_lists.py``). Each list render is
captured: every statement over ``cmi_django_payment`` ends in a ``LIMIT`` (or counts a
subquery that does), and the number of statements does not grow with the payments.
"""

from __future__ import annotations

from typing import Any

import pytest
from cmi_django.listing import BoundedPaginator, distinct_values
from cmi_django.models import Payment
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.adapters.staff_lists import fill, payment_queries, unbounded

pytestmark = pytest.mark.django_db

LIST = "/admin/cmi_django/payment/"


@pytest.fixture
def staff(client: Client) -> Client:
    User.objects.create_superuser("staff", "staff@example.ma", "pw")
    client.login(username="staff", password="pw")
    return client


def render(client: Client, url: str) -> tuple[str, list[dict[str, Any]]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return response.content.decode(), queries.captured_queries


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?p=2",
        "?platform=oscar",
        "?config_key=wagtail:1&state=captured",
        "?created_at__gte=2000-01-01+00%3A00%3A00%2B00%3A00&created_at__lt=2999-01-01+00%3A00%3A00%2B00%3A00",
        "?o=-7",
    ],
)
def test_admin_list_reads_payments_through_limits_only(staff: Client, query: str) -> None:
    for platform in ("oscar", "wagtail", "saleor"):
        fill(110, platform=platform)  # more than a page: the list pages
    html, queries = render(staff, LIST + query)
    assert "<table" in html
    assert payment_queries(queries), "the list read no payment: the check saw nothing"
    assert unbounded(queries) == []


def test_admin_list_costs_the_same_statements_at_any_size(staff: Client) -> None:
    fill(30, platform="oscar")
    _, small = render(staff, LIST + "?platform=oscar")
    fill(300, platform="oscar")
    fill(300, platform="saleor")
    _, large = render(staff, LIST + "?platform=oscar")
    assert len(large) == len(small)


def test_admin_filters_offer_the_values_found_through_the_index(staff: Client) -> None:
    fill(3, platform="oscar")
    fill(3, platform="wagtail")
    html, _ = render(staff, LIST)
    assert "?platform=oscar" in html
    assert "?platform=wagtail" in html
    assert "?config_key=wagtail%3A1" in html or "?config_key=wagtail:1" in html
    assert "platform=saleor" not in html
    filtered, _ = render(staff, LIST + "?platform=wagtail")
    wagtail = set(Payment.objects.filter(platform="wagtail").values_list("oid", flat=True))
    oscar = set(Payment.objects.filter(platform="oscar").values_list("oid", flat=True))
    assert all(oid in filtered for oid in wagtail)
    assert not any(oid in filtered for oid in oscar)


def test_admin_list_survives_hostile_filter_values(staff: Client) -> None:
    fill(3, platform="oscar")
    oid = Payment.objects.get(oid__endswith="0").oid
    for query in ("?platform=%27%3B--", "?config_key=%00", "?platform=osc%00ar"):
        response = staff.get(LIST + query)
        assert response.status_code == 200
        assert oid not in response.content.decode()  # an unknown value lists nothing
    for query in ("?p=999999", "?p=-1", "?p=x"):
        assert staff.get(LIST + query).status_code in (200, 302)


def test_bounded_paginator_counts_up_to_the_limit(settings: Any) -> None:
    settings.CMI_STAFF_LIST_LIMIT = 100
    fill(130, platform="oscar")
    paginator = BoundedPaginator(Payment.objects.order_by("-created_at", "-id"), 25)
    assert (paginator.count, paginator.truncated, paginator.num_pages) == (100, True, 4)
    newest = Payment.objects.order_by("-created_at", "-id")[:100]
    assert list(paginator.page(4).object_list) == list(newest[75:100])
    small = BoundedPaginator(Payment.objects.filter(oid__lt="OS00000080"), 25)
    assert (small.count, small.truncated) == (80, False)


def test_distinct_values_walks_each_value_once(settings: Any) -> None:
    fill(5, platform="oscar", reference="B")
    fill(5, platform="oscar", reference="A")
    fill(5, platform="oscar", reference="")
    fill(5, platform="wagtail", reference="C")
    with CaptureQueriesContext(connection) as queries:
        values = distinct_values(Payment.objects.filter(platform="oscar"), "reference")
    assert values == ["A", "B"]
    assert unbounded(queries.captured_queries) == []
    assert distinct_values(Payment.objects.all(), "platform") == ["oscar", "wagtail"]
    assert distinct_values(Payment.objects.all(), "platform", limit=1) == ["oscar"]
    assert distinct_values(Payment.objects.none(), "platform") == []
