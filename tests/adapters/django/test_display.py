"""Money as people read it, and the shopper's language (cmi_django.display, cmi_django.i18n)."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from cmi_django.display import currency_code, format_money, money_for_csv
from cmi_django.i18n import amount_error, shopper_language, state_label
from django.utils import translation

from cmi_core import ValidationError
from cmi_core.money import check_amount, get_currency


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        (Decimal("249.000"), "504", "fr", "249,00\xa0MAD"),  # the database's 3 decimals
        (Decimal("249.000"), "504", "en", "249.00\xa0MAD"),
        (Decimal("1249.5"), "MAD", "fr", "1\u202f249,50\xa0MAD"),
        (Decimal("1249.5"), "504", "ar", "1,249.50\xa0MAD"),
        (Decimal("12.5"), "788", "en", "12.500\xa0TND"),  # the currency's own decimals
        (Decimal(0), "504", "en", "0.00\xa0MAD"),
        (None, "504", "en", ""),
    ],
)
def test_format_money(amount: Any, currency: str, locale: str, expected: str) -> None:
    assert format_money(amount, currency, locale) == expected


def test_format_money_follows_the_active_language() -> None:
    with translation.override("fr"):
        assert format_money(Decimal("120.5"), "504") == "120,50\xa0MAD"
    with translation.override("en"):
        assert format_money(Decimal("120.5"), "504") == "120.50\xa0MAD"


def test_codes_and_csv() -> None:
    assert currency_code("504") == "MAD"
    assert currency_code("999") == "999"  # shown as given, never a crash
    assert money_for_csv(Decimal("249.000"), "504") == "249.00"
    assert money_for_csv(None, "504") == ""


def test_shopper_language_is_active_in_the_block_only(settings: Any) -> None:
    settings.LANGUAGES = [("fr", "French"), ("en", "English"), ("ar", "Arabic")]
    with translation.override("fr"):
        with shopper_language(SimpleNamespace(lang="ar")) as lang:  # type: ignore[arg-type]
            assert (lang, translation.get_language()) == ("ar", "ar")
        assert translation.get_language() == "fr"
        with shopper_language("xx"):  # not offered by the site: left as it is
            assert translation.get_language() == "fr"


def test_states_and_amount_rules_are_translated() -> None:
    with pytest.raises(ValidationError) as raised:
        check_amount(Decimal("1.234"), get_currency("504"))
    with translation.override("fr"):
        assert state_label("partially_refunded") == "partiellement remboursé"
        assert amount_error(raised.value, "504") == "Le MAD accepte au plus 2 décimales."
    with translation.override("en"):
        assert state_label("voided") == "authorisation cancelled"
        assert amount_error(raised.value, "504") == "MAD allows at most 2 decimal places."
