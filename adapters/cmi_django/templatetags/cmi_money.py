"""Template filters: ``{% load cmi_money %}`` then ``{{ payment.amount|money:payment.currency }}``.

Every template this project ships shows amounts through these (:mod:`cmi_django.display`),
in the page's active language.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

from cmi_django.display import currency_code, format_money

register = template.Library()

__all__ = ["currency", "money", "state_label"]


@register.filter
def money(amount: Decimal | None, currency: Any = "504") -> str:
    """``249.000`` with currency ``504`` -> "249.00 MAD" (English), "249,00 MAD" (French)."""
    return format_money(amount, currency)


@register.filter
def currency(code: Any) -> str:
    """``504`` -> "MAD"."""
    return currency_code(code)


@register.filter
def state_label(state: str) -> str:
    """A payment state's name for people, translated ("partially_refunded" -> "partially
    refunded" / "partiellement remboursé")."""
    from cmi_django.i18n import state_label as label

    return label(state) if state else ""
