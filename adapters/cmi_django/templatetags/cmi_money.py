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

__all__ = ["currency", "log_kind", "money", "operation_kind", "outcome", "state_label"]


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


@register.filter
def log_kind(kind: str) -> str:
    """A payment log row's kind for people ("ok" -> "return (okUrl)"), translated."""
    from cmi_django.i18n import log_kind_label

    return log_kind_label(kind)


@register.filter
def outcome(value: str) -> str:
    """A payment log row's outcome for people ("duplicate" -> "duplicate, no change")."""
    from cmi_django.i18n import outcome_label

    return outcome_label(value)


@register.filter
def operation_kind(kind: str) -> str:
    """An operation's kind for people ("void" -> "authorisation cancelled (void)")."""
    from cmi_django.i18n import operation_kind_label

    return operation_kind_label(kind)
