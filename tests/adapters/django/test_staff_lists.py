"""The Django admin's payment list at any table size: no statement reads every payment.

Issue 16, goal 4 (the figures: ``benchmarks/bench_staff_lists.py``). Each list render is
captured: every statement over ``cmi_django_payment`` ends in a ``LIMIT`` (or counts a
subquery that does), and the number of statements does not grow with the payments.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from cmi_django.listing import BoundedPaginator, distinct_values
from cmi_django.models import Payment
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from tests.adapters.staff_lists import (
    fill,
    fill_callbacks,
    fill_operations,
    payment_queries,
    render,
    sorted_in_full,
    unbounded,
)

pytestmark = pytest.mark.django_db

LIST = "/admin/cmi_django/payment/"
CALLBACKS = "/admin/cmi_django/callbacklog/"
OPERATIONS = "/admin/cmi_django/operation/"


@pytest.fixture
def staff(client: Client) -> Client:
    User.objects.create_superuser("staff", "staff@example.ma", "pw")
    client.login(username="staff", password="pw")
    return client


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


@pytest.mark.parametrize(
    ("url", "table"),
    [
        (CALLBACKS, "cmi_django_callbacklog"),
        (CALLBACKS + "?p=2", "cmi_django_callbacklog"),
        (CALLBACKS + "?outcome=declined", "cmi_django_callbacklog"),
        (CALLBACKS + "?kind__exact=callback&verified__exact=1", "cmi_django_callbacklog"),
        (OPERATIONS, "cmi_django_operation"),
        (OPERATIONS + "?p=2", "cmi_django_operation"),
        (OPERATIONS + "?kind__exact=refund&succeeded__exact=1", "cmi_django_operation"),
    ],
)
def test_callback_and_operation_lists_read_an_index_range(
    staff: Client, url: str, table: str
) -> None:
    # More than a page (50) of each: a single page is read whole, without a LIMIT.
    fill_callbacks(110, outcome="approved")
    fill_callbacks(110, outcome="declined")
    fill_operations(110, kind="capture")
    fill_operations(110, kind="refund")
    html, queries = render(staff, url)
    assert "<table" in html
    assert payment_queries(queries, table), "the list read nothing: the check saw nothing"
    assert unbounded(queries, table) == []  # no DISTINCT for the outcome filter's choices
    assert sorted_in_full(queries, table) == []  # newest first through an index


def test_payment_list_reads_its_index_in_order(staff: Client) -> None:
    fill(60, platform="oscar")
    fill(60, platform="wagtail")
    for query in ("", "?p=2", "?platform=wagtail"):
        _, queries = render(staff, LIST + query)
        assert payment_queries(queries)
        assert sorted_in_full(queries) == []


def test_outcome_filter_offers_the_outcomes_found_through_the_index(staff: Client) -> None:
    fill_callbacks(3, outcome="approved")
    fill_callbacks(2, outcome="declined")
    html, _ = render(staff, CALLBACKS)
    assert "?outcome=approved" in html
    assert "?outcome=declined" in html
    declined, _ = render(staff, CALLBACKS + "?outcome=declined")
    assert declined.count("declined</td>") == 2
    hostile, _ = render(staff, CALLBACKS + "?outcome=%00")  # not an offered value: nothing
    assert "approved</td>" not in hostile
    assert "declined</td>" not in hostile


def _shown_count(html: str, element: str) -> str:
    found = re.search(rf'<span[^>]*id="{element}"[^>]*>(.*?)</span>', html, re.DOTALL)
    assert found, f"no #{element} in the page"
    return " ".join(found.group(1).split())


@pytest.mark.parametrize(
    ("language", "more", "results"),
    [
        ("en", "more than 100", "more than 100 results"),
        ("fr", "plus de 100", "plus de 100 résultats"),
        ("ar", "أكثر من 100", "أكثر من 100 نتيجة"),
    ],
)
def test_lists_past_the_limit_say_more_than_the_limit(
    staff: Client, settings: Any, language: str, more: str, results: str
) -> None:
    settings.CMI_STAFF_LIST_LIMIT = 100
    settings.LANGUAGE_CODE = language
    fill(130, platform="oscar")
    html, _ = render(staff, LIST)
    assert _shown_count(html, "cmi-result-count") == more
    html, _ = render(staff, LIST + "?platform=oscar")  # filtered: the search bar counts too
    assert _shown_count(html, "cmi-result-count") == more
    assert _shown_count(html, "cmi-search-count").startswith(results)
    fill_callbacks(101)
    html, _ = render(staff, CALLBACKS)
    assert _shown_count(html, "cmi-result-count") == more
    fill_operations(101)
    html, _ = render(staff, OPERATIONS)
    assert _shown_count(html, "cmi-result-count") == more


def test_lists_under_the_limit_show_the_exact_count(staff: Client, settings: Any) -> None:
    settings.CMI_STAFF_LIST_LIMIT = 100
    settings.LANGUAGE_CODE = "fr"
    fill(100, platform="oscar")  # exactly the limit: every match counted
    html, _ = render(staff, LIST)
    assert _shown_count(html, "cmi-result-count") == "100"
    html, _ = render(staff, LIST + "?q=OS0000001")  # OS00000010 to OS00000019
    assert _shown_count(html, "cmi-result-count") == "10"
    assert _shown_count(html, "cmi-search-count").startswith("10 résultats")


def test_count_label_groups_digits_in_the_language(settings: Any) -> None:
    settings.CMI_STAFF_LIST_LIMIT = 1000
    fill(1001, platform="oscar")
    paginator = BoundedPaginator(Payment.objects.order_by("-created_at", "-id"), 25)
    with translation.override("fr"):
        assert paginator.count_label.replace("\xa0", " ").replace("\u202f", " ") == "plus de 1 000"
    with translation.override("en"):
        assert paginator.count_label == "more than 1,000"
    small = BoundedPaginator(Payment.objects.filter(oid__lt="OS00000080"), 25)
    with translation.override("en"):
        assert small.count_label == "80"
