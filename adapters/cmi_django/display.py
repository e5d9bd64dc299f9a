"""Money as people read it: one formatter for every amount a page, message, e-mail or
export shows.

CMI's wire format (``"249.00"``, currency ``504``) is :mod:`cmi_core.money`'s business;
here an amount becomes money in the reader's locale, with the currency's own decimals
and its alphabetic code: "249,00 MAD" in French, "249.00 MAD" in English, and in
Arabic whatever Babel's CLDR data says for that locale. Babel is the maintained
formatter, so no digit grouping or decimal separator is written by hand here.
"""

from __future__ import annotations

import functools
from decimal import Decimal, InvalidOperation

from babel import Locale
from babel.numbers import NumberPattern, format_currency, parse_pattern
from django.utils import translation

from cmi_core import ValidationError
from cmi_core.money import get_currency

__all__ = ["currency_code", "format_money", "money_for_csv"]

#: Django's language codes as Babel's locales (Babel wants ``fr``, ``ar``, ``en``...).
_FALLBACK_LOCALE = "en"


def currency_code(currency: str | int) -> str:
    """The alphabetic code people read ("MAD") for a numeric one ("504") or an alpha one.

    An unknown code is returned as given: a page shows it rather than failing.
    """
    try:
        return get_currency(currency).alpha
    except ValidationError:
        return str(currency)


def _locale(locale: str | None) -> str:
    code = locale or translation.get_language() or _FALLBACK_LOCALE
    return code.replace("-", "_")


@functools.lru_cache(maxsize=64)
def _babel_locale(code: str) -> Locale:
    """Babel's locale for ``code``, parsed once (a staff list formats 20 to 80 amounts)."""
    return Locale.parse(code)


@functools.lru_cache(maxsize=8)
def _money_pattern(digits: int) -> NumberPattern:
    """The number, ``digits`` decimals, then the code: "#,##0.00 ¤¤", parsed once."""
    return parse_pattern("#,##0" + ("." + "0" * digits if digits else "") + "\xa0¤¤")


def format_money(
    amount: Decimal | str | int | None, currency: str | int, locale: str | None = None
) -> str:
    """``amount`` of ``currency`` (numeric "504" or "MAD") as money in ``locale``.

    ``locale`` defaults to the active Django language. The currency's own decimals are
    used (2 for MAD, 3 for TND...), whatever the database column keeps. The code, not a
    symbol, is shown ("249,00 MAD"): "DH" and "د.م." are both in use in Morocco, the
    code is unambiguous. ``None`` or an unreadable amount gives an empty string.
    """
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return ""
    code = currency_code(currency)
    try:
        digits = get_currency(code).minor_units
    except ValidationError:
        digits = 2
    # The number in the locale's own digits and separators, then the code: the same
    # order in every language, so "249,00 MAD" and "249.00 MAD" read alike.
    pattern = _money_pattern(digits)
    try:
        return format_currency(
            value,
            code,
            format=pattern,
            locale=_babel_locale(_locale(locale)),
            currency_digits=False,
        )
    except (ValueError, LookupError):  # a locale Babel does not know: the neutral one
        return format_currency(
            value, code, format=pattern, locale=_FALLBACK_LOCALE, currency_digits=False
        )


def money_for_csv(amount: Decimal | None, currency: str | int) -> str:
    """An amount for a CSV export: a plain number with the currency's decimals ("249.00").

    Spreadsheets read a dot and no grouping whatever their locale's import settings; the
    currency goes in its own column.
    """
    if amount is None:
        return ""
    code = currency_code(currency)
    try:
        quantum = get_currency(code).quantum
    except ValidationError:
        quantum = Decimal("0.01")
    return f"{Decimal(amount).quantize(quantum):f}"
