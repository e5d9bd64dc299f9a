"""The views that may call CMI never run inside ATOMIC_REQUESTS' transaction (a CMI call
under the database's write lock, before its intent is committed)."""

from __future__ import annotations

from tests.adapters.money_views import atomic_ones, money_views


def test_views_that_may_call_cmi_opt_out_of_atomic_requests() -> None:
    assert len(money_views()) >= 4
    assert atomic_ones() == []
