"""Template filters: ``{% load cmi_money %}`` then ``{{ payment.amount|money:payment.currency }}``.

Every template this project ships shows amounts through these (:mod:`cmi_django.display`),
in the page's active language.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from cmi_django.display import currency_code, format_money

register = template.Library()

__all__ = [
    "bdi",
    "currency",
    "isolate",
    "log_kind",
    "money",
    "operation_kind",
    "outcome",
    "state_label",
]


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


@register.filter
def isolate(value: Any) -> str:
    """An identifier or amount kept whole inside a right-to-left sentence (Unicode
    isolates, :func:`cmi_django.i18n.isolate`); for ``{% blocktrans %}`` variables and
    titles, where ``<bdi>`` cannot go."""
    from cmi_django.i18n import isolate as isolated

    return isolated(value) if value is not None else ""


@register.filter
def bdi(value: Any) -> SafeString | str:
    """``<bdi>`` around an identifier or amount, for ``{% blocktrans %}`` variables in HTML
    (a safe value is not escaped again): isolated from the right-to-left sentence around
    it and kept on one line ("(المرجع: 100002-1)" never drawn as "-100002" and "1)")."""
    if value is None or value == "":
        return ""
    return format_html('<bdi style="white-space: nowrap">{}</bdi>', value)
