"""The shopper's language, for work done on their behalf without their request.

CMI's server-to-server callback has no shopper request, so Django's default language
would apply to what it produces: the Oscar order (its shipping method's name, its lines),
the confirmation e-mail, Wagtail's receipt, Saleor's event messages. The payment records
the language the shopper paid in (``Payment.lang``, the ``lang`` sent to CMI, guide §3.1);
:func:`shopper_language` activates it around that work.

Call it at a platform's entry points (Oscar's order placement and its e-mail, Wagtail's
receipt), or once around a hook's dispatch: nesting is harmless.

Also here: the names of payment states for people (:func:`state_label`), and CMI's
amount rules as translated messages (:func:`amount_error`): the core's own messages stay
English, for logs and developers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext, gettext_lazy

from cmi_core import PaymentState, ValidationError
from cmi_core.money import get_currency

if TYPE_CHECKING:
    from cmi_django.models import Payment

__all__ = ["STATE_LABELS", "amount_error", "shopper_language", "state_label"]

#: Every payment state's name for people (translated in cmi_django's catalogues).
STATE_LABELS = {
    PaymentState.CREATED.value: gettext_lazy("created"),
    PaymentState.REDIRECTED.value: gettext_lazy("sent to CMI"),
    PaymentState.DECLINED.value: gettext_lazy("declined"),
    PaymentState.AUTHORISED.value: gettext_lazy("authorised"),
    PaymentState.CAPTURED.value: gettext_lazy("captured"),
    PaymentState.PARTIALLY_REFUNDED.value: gettext_lazy("partially refunded"),
    PaymentState.REFUNDED.value: gettext_lazy("refunded"),
    PaymentState.VOIDED.value: gettext_lazy("authorisation cancelled"),
    PaymentState.NEEDS_ATTENTION.value: gettext_lazy("needs attention"),
}


def state_label(state: str) -> str:
    """``"partially_refunded"`` -> "partially refunded", in the active language."""
    label = STATE_LABELS.get(str(state))
    return str(label) if label is not None else str(state).replace("_", " ")


def _site_language(lang: str) -> str | None:
    """``lang`` if the site offers it (``LANGUAGES``), else None."""
    offered = {code.split("-")[0] for code, _ in getattr(settings, "LANGUAGES", ())}
    return lang if lang in offered else None


@contextmanager
def shopper_language(payment: Payment | str | None) -> Iterator[str]:
    """Activate the language the shopper paid in for the block; yield the code.

    ``payment``: the payment (its ``lang``) or the language code itself. A payment with no
    usable language (or a language the site does not offer) leaves the active language
    as it is.
    """
    code = payment if isinstance(payment, str) else (payment.lang if payment else "")
    lang = _site_language((code or "").lower())
    if lang is None:
        yield translation.get_language() or settings.LANGUAGE_CODE
        return
    with translation.override(lang):
        yield lang


def amount_error(exc: ValidationError, currency: str | int = "504") -> str:
    """A translated message for an amount the core refused (its message is English)."""
    try:
        minor = get_currency(currency)
    except ValidationError:
        return str(gettext("Enter a valid amount, such as 29.95."))
    if "decimal places" in exc.rule:  # the core's check_amount rule (cmi_core.money)
        return str(gettext("%(currency)s allows at most %(digits)d decimal places.")) % {
            "currency": minor.alpha,
            "digits": minor.minor_units,
        }
    return str(gettext("Enter a valid amount, such as 29.95."))
