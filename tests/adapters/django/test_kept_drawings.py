"""The staff lists' shared helpers: the bounded store of kept drawings and the cell text."""

from __future__ import annotations

import datetime
import gc
import weakref
from decimal import Decimal
from typing import Any

import pytest
from cmi_django import listing
from cmi_django.listing import KeptDrawings, cell_text, clear_all, escape_text, local_text
from django.template import Context
from django.template.base import render_value_in_context
from django.utils import timezone, translation
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy

# -- KeptDrawings ---------------------------------------------------------------------------


def test_a_kept_value_is_answered_by_its_key() -> None:
    store: KeptDrawings[str] = KeptDrawings(4)
    assert store.get("a") is None
    assert store.keep("a", "<b>A</b>") == "<b>A</b>"
    assert store.get("a") == "<b>A</b>"
    assert store.get("b") is None
    assert len(store) == 1


def test_a_full_store_is_emptied_before_the_next_value() -> None:
    store: KeptDrawings[str] = KeptDrawings(3)
    for key in ("a", "b", "c"):
        store.keep(key, key.upper())
    assert [store.get(key) for key in ("a", "b", "c")] == ["A", "B", "C"]
    assert store.keep("d", "D") == "D"
    assert len(store) == 1
    assert [store.get(key) for key in ("a", "b", "c", "d")] == [None, None, None, "D"]


def test_any_number_of_keys_keeps_at_most_the_bound() -> None:
    """A stream of ever new keys (staff submitting new filter values) never grows a store
    past its bound: the test fails as soon as ``keep`` stops bounding."""
    store: KeptDrawings[str] = KeptDrawings(5)
    most = 0
    for number in range(1000):
        store.keep(("filters", number), "x")
        most = max(most, len(store))
    assert most == 5
    store.keep(("filters", 0), "x")  # a key kept again, the store full: still bounded
    assert len(store) <= 5


def test_keeping_a_key_again_replaces_its_value() -> None:
    store: KeptDrawings[str] = KeptDrawings(2)
    store.keep("a", "old")
    store.keep("a", "new")
    assert store.get("a") == "new"
    assert len(store) == 1


def test_a_value_longer_than_the_largest_is_returned_and_not_kept() -> None:
    store: KeptDrawings[str] = KeptDrawings(10, largest=5)
    assert store.keep("big", "123456") == "123456"
    assert store.get("big") is None
    assert len(store) == 0
    assert store.keep("fits", "12345") == "12345"  # exactly the largest: kept
    assert store.get("fits") == "12345"


def test_a_refused_value_leaves_a_full_store_as_it_was() -> None:
    store: KeptDrawings[str] = KeptDrawings(2, largest=3)
    store.keep("a", "A")
    store.keep("b", "B")
    store.keep("c", "long value")
    assert (store.get("a"), store.get("b"), len(store)) == ("A", "B", 2)


def test_bound_and_largest_changed_on_a_store_apply_to_the_next_keep() -> None:
    store: KeptDrawings[str] = KeptDrawings(100)
    store.bound = 2
    store.largest = 1
    for key in "abcdef":
        store.keep(key, key)
        assert len(store) <= 2
    store.keep("z", "zz")
    assert store.get("z") is None


def test_clear_drops_one_store() -> None:
    first: KeptDrawings[str] = KeptDrawings(4)
    second: KeptDrawings[str] = KeptDrawings(4)
    first.keep("a", "A")
    second.keep("a", "A")
    first.clear()
    assert (len(first), second.get("a")) == (0, "A")


def test_clear_all_drops_every_store() -> None:
    """Every store made, whatever its values, and the lists' own stores (Oscar's and
    Wagtail's modules register theirs the same way when imported)."""
    texts: KeptDrawings[str] = KeptDrawings(4)
    parts: KeptDrawings[tuple[str, str]] = KeptDrawings(4, largest=10)
    texts.keep("a", "A")
    parts.keep(("config", "fr"), ("api", "urls"))
    clear_all()
    assert (len(texts), len(parts)) == (0, 0)
    assert texts.get("a") is None
    assert parts.get(("config", "fr")) is None


def test_the_stores_are_not_kept_alive_by_clear_all() -> None:
    """A store a test (or anything) makes and lets go is not held by the registry."""
    store: KeptDrawings[str] = KeptDrawings(4)
    store.keep("a", "A")
    assert store in listing._STORES
    alive = weakref.ref(store)
    del store
    gc.collect()
    assert alive() is None


def test_iterating_a_store_gives_its_keys_as_they_were() -> None:
    store: KeptDrawings[str] = KeptDrawings(10)
    store.keep(("filters", 1), "x")
    store.keep(("dropdown", 2), "y")
    keys = iter(store)
    store.keep(("filters", 3), "z")  # kept meanwhile: the iteration does not break
    assert sorted(keys) == [("dropdown", 2), ("filters", 1)]
    assert [key for key in store if key[0] == "filters"] == [("filters", 1), ("filters", 3)]


# -- cell text ------------------------------------------------------------------------------

UTC_EVENING = datetime.datetime(2026, 6, 1, 23, 30, 5, tzinfo=datetime.UTC)

VALUES: list[Any] = [
    "plain",
    "<b>A & B</b> \"'",
    "",
    SafeString("<i>safe</i>"),
    mark_safe("<u>marked</u>"),
    gettext_lazy("<lazy>"),
    None,
    True,
    0,
    1234567,
    Decimal("1234.50"),
    1234.5,
    UTC_EVENING,
    datetime.datetime(2026, 3, 1, 23, 30),  # noqa: DTZ001 (naive, as a site without USE_TZ keeps)
    datetime.date(2026, 3, 1),
    datetime.time(9, 5),
]


class Shown:
    def __str__(self) -> str:
        return "<shown>"


class ShownSafe:
    def __str__(self) -> str:
        return SafeString("<kept>")


@pytest.mark.parametrize("language", ["fr", "en", "ar"])
@pytest.mark.parametrize("use_tz", [None, True, False])
@pytest.mark.parametrize("use_l10n", [None, True, False])
def test_cell_text_is_what_a_template_writes(
    language: str, use_tz: Any, use_l10n: Any, settings: Any
) -> None:
    """``cell_text`` against Django's own ``{{ value }}`` (``render_value_in_context`` in
    a context with autoescaping), for text, safe and lazy text, numbers, dates and
    objects, with the context's time-zone and localisation switches."""
    settings.USE_THOUSAND_SEPARATOR = True
    context = Context(use_tz=use_tz, use_l10n=use_l10n)
    with translation.override(language), timezone.override("Africa/Casablanca"):
        for value in [*VALUES, Shown(), ShownSafe()]:
            expected = str(render_value_in_context(value, context))
            assert cell_text(value, use_tz=use_tz, use_l10n=use_l10n) == expected, value
            unescaped = render_value_in_context(
                value, Context(use_tz=use_tz, use_l10n=use_l10n, autoescape=False)
            )
            assert local_text(value, use_tz=use_tz, use_l10n=use_l10n) == unescaped, value


def test_a_date_is_written_in_the_current_time_zone() -> None:
    with translation.override("en"), timezone.override("Africa/Casablanca"):
        assert "June 2, 2026" in cell_text(UTC_EVENING)  # 00:30 on the 2nd in Casablanca (UTC+1)
        assert "June 1, 2026" in cell_text(UTC_EVENING, use_tz=False)


def test_escape_text_is_conditional_escape() -> None:
    for value in [*VALUES, Shown(), ShownSafe()]:
        assert escape_text(value) == str(conditional_escape(value)), value
    assert escape_text("<script>") == "&lt;script&gt;"
    assert escape_text(SafeString("<b>")) == "<b>"
