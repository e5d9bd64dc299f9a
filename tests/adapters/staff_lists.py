"""What the staff-list tests of every platform share: filling payments, judging queries.

A staff list (Django admin, Oscar's dashboard, Wagtail's admin) must cost the same at any
number of payments (issue 16, goal 4): every statement that reads ``cmi_django_payment``
ends in a ``LIMIT`` (a page, one row, a bounded walk of an index), or counts a subquery
that does. A ``COUNT(*)`` over the table, a ``SELECT DISTINCT`` for a filter's choices or
a ``MIN``/``MAX`` without a limit all fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from cmi_django.models import CallbackLog, Operation, Payment
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

__all__ = [
    "fill",
    "fill_callbacks",
    "fill_operations",
    "payment_queries",
    "sorted_in_full",
    "unbounded",
]

_TABLE = re.compile(r"\bcmi_django_payment\b")
_ENDS_WITH_LIMIT = re.compile(r"\bLIMIT\s+\d+(\s+OFFSET\s+\d+)?\s*$", re.IGNORECASE)
_BOUNDED_COUNT = re.compile(
    r"^SELECT COUNT\(\*\) FROM \(SELECT .* LIMIT \d+\) subquery$", re.IGNORECASE | re.DOTALL
)


def fill(count: int, *, platform: str, reference: str = "1", title: str = "Page") -> None:
    """``count`` payments of ``platform`` in one bulk insert (distinct oids)."""
    start = Payment.objects.count()
    Payment.objects.bulk_create(
        Payment(
            oid=f"{platform[:2].upper()}{start + index:08d}",
            platform=platform,
            reference=reference,
            amount=Decimal("100.00"),
            email="payer@example.ma",
            state="captured",
            captured_amount=Decimal("100.00"),
            config_key=f"{platform}:1",
            data={"page_id": 1, "page_title": title, "shopper": {"name": "Payer"}},
        )
        for index in range(count)
    )


def fill_callbacks(count: int, *, outcome: str = "approved", kind: str = "callback") -> None:
    """``count`` logged callbacks with ``outcome``, in one bulk insert."""
    CallbackLog.objects.bulk_create(
        CallbackLog(
            oid=f"CB{index:08d}", kind=kind, verified=True, outcome=outcome, reply="ACTION=POSTAUTH"
        )
        for index in range(count)
    )


def fill_operations(count: int, *, kind: str = "capture") -> None:
    """``count`` succeeded operations of ``kind`` on one payment, in one bulk insert."""
    payment = Payment.objects.create(oid=f"OP{Payment.objects.count():08d}", amount=Decimal(100))
    Operation.objects.bulk_create(
        Operation(
            payment=payment, kind=kind, amount=Decimal(100), state="succeeded", succeeded=True
        )
        for _ in range(count)
    )


def payment_queries(
    queries: Iterable[Mapping[str, Any]], table: str = "cmi_django_payment"
) -> list[str]:
    """The statements among ``queries`` (CaptureQueriesContext's) that read payments (or
    ``table``: the callbacks' and the operations' lists are judged the same way)."""
    pattern = _TABLE if table == "cmi_django_payment" else re.compile(rf"\b{table}\b")
    return [q["sql"] for q in queries if pattern.search(q["sql"])]


def unbounded(queries: Iterable[Mapping[str, Any]], table: str = "cmi_django_payment") -> list[str]:
    """The statements that may read every payment (or every row of ``table``): no final
    LIMIT, DISTINCT, or a bare count."""
    found = []
    for sql in payment_queries(queries, table):
        text = sql.strip()
        if _BOUNDED_COUNT.match(text):
            continue
        if not _ENDS_WITH_LIMIT.search(text) or re.search(r"\bDISTINCT\b", text, re.I):
            found.append(text)
    return found


def _plan(sql: str) -> list[str]:
    """The plan's lines for ``sql``; on PostgreSQL with sorting priced out (``enable_sort``
    off), so that a Sort node means that no index gives the order, whatever the table's size."""
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            return [str(row[-1]) for row in cursor.fetchall()]
        cursor.execute("SET enable_sort = off")
        try:
            cursor.execute(f"EXPLAIN {sql}")
            return [str(row[0]) for row in cursor.fetchall()]
        finally:
            cursor.execute("RESET enable_sort")


def sorted_in_full(
    queries: Iterable[Mapping[str, Any]], table: str = "cmi_django_payment"
) -> list[str]:
    """The page statements over ``table`` (``ORDER BY``) whose plan sorts every matching row
    (PostgreSQL's Sort node, SQLite's temporary B-tree for the ORDER BY) instead of
    reading an index in the list's order."""
    found = []
    for sql in payment_queries(queries, table):
        if "ORDER BY" not in sql or sql.lstrip().upper().startswith("WITH"):
            continue
        for line in _plan(sql):
            node = line.strip().removeprefix("->").strip()
            if node.startswith("Sort ") or "USE TEMP B-TREE FOR ORDER BY" in node:
                found.append(sql)
                break
    return found


def render(
    client: Client, url: str, data: Mapping[str, str] | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The page at ``url`` (a 200) and the SQL its render ran."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, data)
    assert response.status_code == 200
    return response.content.decode(), queries.captured_queries
