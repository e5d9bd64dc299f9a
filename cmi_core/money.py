"""Amounts and currencies: the one place where money is parsed and formatted.

CMI takes amounts as decimal text with ``.`` or ``,`` as separator (guide §4.1.1,
``amount``: "29.95"), currencies as ISO 4217 numeric codes (MAD = 504), and its API
reports some amounts in minor units (``101`` = 1.01, docs/protocol.md#the-xml-api). Every
conversion between :class:`~decimal.Decimal` and those texts goes through this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from cmi_core.errors import ValidationError

__all__ = [
    "CURRENCIES",
    "MAX_DIGITS",
    "Currency",
    "display_amount",
    "format_amount",
    "from_minor_units",
    "get_currency",
    "parse_amount",
    "to_minor_units",
]


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency: numeric code (what CMI wants), letters, minor-unit digits."""

    numeric: str
    alpha: str
    minor_units: int

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.minor_units)


# ISO 4217 currencies a Moroccan merchant may quote in (CMI settles in MAD; the others
# are those its multi-currency offer and the usual tourist markets use).
CURRENCIES: dict[str, Currency] = {
    c.numeric: c
    for c in (
        Currency("504", "MAD", 2),
        Currency("978", "EUR", 2),
        Currency("840", "USD", 2),
        Currency("826", "GBP", 2),
        Currency("124", "CAD", 2),
        Currency("756", "CHF", 2),
        Currency("682", "SAR", 2),
        Currency("784", "AED", 2),
        Currency("634", "QAR", 2),
        Currency("012", "DZD", 2),
        Currency("788", "TND", 3),
        Currency("414", "KWD", 3),
        Currency("048", "BHD", 3),
        Currency("512", "OMR", 3),
        Currency("392", "JPY", 0),
        Currency("156", "CNY", 2),
        Currency("752", "SEK", 2),
        Currency("578", "NOK", 2),
        Currency("208", "DKK", 2),
    )
}
_BY_ALPHA = {c.alpha: c for c in CURRENCIES.values()}

_AMOUNT_TEXT = re.compile(r"^[0-9]+(?:[.,][0-9]+)?$|^[.,][0-9]+$")
#: Amounts CMI carries are far below this; larger ones are refused, not computed with.
MAX_DIGITS = 15


def get_currency(code: str | int) -> Currency:
    """Return the currency for a numeric (``"504"``, ``504``) or alphabetic (``"MAD"``) code."""
    text = str(code).strip()
    found = CURRENCIES.get(text.zfill(3)) if text.isdigit() else _BY_ALPHA.get(text.upper())
    if found is None:
        raise ValidationError("currency", "an ISO 4217 currency CMI accepts (e.g. 504 for MAD)")
    return found


def parse_amount(text: str, field: str = "amount") -> Decimal:
    """Parse CMI's amount text (``29.95`` or ``29,95``) into a Decimal.

    Raises :class:`ValidationError` naming ``field`` for anything else (signs, exponents,
    thousands separators, ``NaN``).
    """
    cleaned = text.strip()
    if len(cleaned) > 2 * MAX_DIGITS or not _AMOUNT_TEXT.match(cleaned):
        raise ValidationError(field, "a decimal amount such as 29.95")
    try:
        return Decimal(cleaned.replace(",", "."))
    except InvalidOperation as exc:  # pragma: no cover - the pattern above excludes it
        raise ValidationError(field, "a decimal amount such as 29.95") from exc


def check_amount(amount: Decimal, currency: Currency, field: str = "amount") -> None:
    """Check an amount is a finite positive Decimal with no more decimals than the currency."""
    if not isinstance(amount, Decimal):
        raise ValidationError(field, "must be a decimal.Decimal, never a float")
    if not amount.is_finite() or amount <= 0:
        raise ValidationError(field, "must be greater than zero")
    if amount.adjusted() >= MAX_DIGITS:
        raise ValidationError(field, f"must be less than 10^{MAX_DIGITS}")
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > currency.minor_units:
        raise ValidationError(
            field, f"{currency.alpha} allows at most {currency.minor_units} decimal places"
        )


def format_amount(amount: Decimal, currency: Currency, field: str = "amount") -> str:
    """Format an amount the way CMI's forms and API expect: ``29.95``, ``100``, ``1.250``.

    Exactly the currency's minor-unit digits, ``.`` as separator, no grouping. The amount
    is checked first (positive, not more precise than the currency).
    """
    check_amount(amount, currency, field)
    return f"{amount.quantize(currency.quantum):f}"


def to_minor_units(amount: Decimal, currency: Currency) -> int:
    """``Decimal("1.01")`` in MAD -> ``101``."""
    return int(amount.scaleb(currency.minor_units).to_integral_exact())


def from_minor_units(value: int | str, currency: Currency) -> Decimal:
    """``101`` (or ``"101"``) in MAD -> ``Decimal("1.01")``; ValueError past 10^15."""
    if isinstance(value, str) and len(value.strip()) > MAX_DIGITS + currency.minor_units:
        raise ValueError("amount too large")
    return Decimal(int(value)).scaleb(-currency.minor_units).quantize(currency.quantum)


def display_amount(amount: Decimal, currency: Currency) -> str:
    """An amount for people, zero included (``0.00``): the currency's digits, no check."""
    return f"{amount.quantize(currency.quantum):f}"
