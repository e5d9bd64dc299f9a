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

from cmi_django.models import Payment

__all__ = ["fill", "payment_queries", "unbounded"]

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


def payment_queries(queries: Iterable[Mapping[str, Any]]) -> list[str]:
    """The statements among ``queries`` (CaptureQueriesContext's) that read payments."""
    return [q["sql"] for q in queries if _TABLE.search(q["sql"])]


def unbounded(queries: Iterable[Mapping[str, Any]]) -> list[str]:
    """The statements that may read every payment: no final LIMIT, DISTINCT, or a bare count."""
    found = []
    for sql in payment_queries(queries):
        text = sql.strip()
        if _BOUNDED_COUNT.match(text):
            continue
        if not _ENDS_WITH_LIMIT.search(text) or re.search(r"\bDISTINCT\b", text, re.I):
            found.append(text)
    return found
