"""Review 8: the answer-by time a Saleor webhook sets for the money operations it runs
without handing them ``within`` (:func:`cmi_django.operations.budget`)."""

from __future__ import annotations

import threading
import time

from cmi_django.operations import _within, budget


def test_a_budget_holds_inside_its_block_only_and_the_earliest_wins() -> None:
    started = time.monotonic()
    assert _within(None, started) is None
    assert _within(7.0, started) == 7.0
    with budget(5):
        left = _within(None, started)
        assert left is not None
        assert 4 < left < 5.5
        assert _within(2.0, started) == 2.0  # the caller's own, shorter, stands
        with budget(60):  # a later, longer budget does not extend the first
            left = _within(None, started)
            assert left is not None
            assert left < 5.5
        with budget(1):
            left = _within(None, started)
            assert left is not None
            assert left < 1.5
        with budget(None):
            assert _within(None, started) is not None
    assert _within(None, started) is None  # nothing left behind for the next request


def test_a_budget_does_not_reach_another_thread() -> None:
    seen: list[float | None] = []
    with budget(5):
        thread = threading.Thread(target=lambda: seen.append(_within(None, time.monotonic())))
        thread.start()
        thread.join(10)
    assert seen == [None]
