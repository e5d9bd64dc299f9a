"""The shopper's language, for work done on their behalf without their request.

CMI's server-to-server callback has no shopper request, so Django's default language
would apply to what it produces: the Oscar order (its shipping method's name, its lines),
the confirmation e-mail, Wagtail's receipt, Saleor's event messages. The payment records
the language the shopper paid in (``Payment.lang``, the ``lang`` sent to CMI, guide §3.1);
:func:`shopper_language` activates it around that work.

Call it at a platform's entry points (Oscar's order placement and its e-mail, Wagtail's
receipt), or once around a hook's dispatch: nesting is harmless.

Also here: the names of payment states for people (:func:`state_label`), of the payment
log's technical values (:func:`log_kind_label`, :func:`outcome_label`,
:func:`operation_kind_label`), and CMI's
amount rules as translated messages (:func:`amount_error`): the core's own messages stay
English, for logs and developers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy

from cmi_core import PaymentState, ValidationError
from cmi_core.money import get_currency

if TYPE_CHECKING:
    from cmi_django.models import Payment

__all__ = [
    "LOG_KIND_LABELS",
    "OPERATION_KIND_LABELS",
    "OUTCOME_LABELS",
    "STATE_LABELS",
    "amount_error",
    "gettext_in",
    "isolate",
    "log_kind_label",
    "operation_kind_label",
    "outcome_label",
    "paid_in",
    "shopper_language",
    "state_label",
]

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


#: ``CallbackLog.kind``: what reached the shop (guide §4.2: the server-to-server callback,
#: the shopper's return to okUrl or failUrl).
LOG_KIND_LABELS = {
    "callback": pgettext_lazy("payment log", "CMI callback"),
    "ok": pgettext_lazy("payment log", "return (okUrl)"),
    "fail": pgettext_lazy("payment log", "return (failUrl)"),
}
#: ``CallbackLog.outcome``: the decision's :class:`cmi_core.Outcome`, or what the shared
#: layer wrote when there was no decision.
OUTCOME_LABELS = {
    "capture": pgettext_lazy("payment log", "approved, capture asked"),
    "authorise": pgettext_lazy("payment log", "approved, to capture by staff"),
    "declined": pgettext_lazy("payment log", "declined"),
    "late_decline": pgettext_lazy("payment log", "late decline, ignored"),
    "duplicate": pgettext_lazy("payment log", "duplicate, no change"),
    "mismatch": pgettext_lazy("payment log", "amount or currency mismatch"),
    "conflict": pgettext_lazy("payment log", "second approval, flagged"),
    "unknown_order": pgettext_lazy("payment log", "unknown order"),
    "unconfirmed": pgettext_lazy("payment log", "not confirmed by CMI"),
    "invalid": pgettext_lazy("payment log", "invalid signature or format"),
    "attention": pgettext_lazy("payment log", "already waiting for staff"),
    "approved": pgettext_lazy("payment log", "approved"),
    "status_sync": pgettext_lazy("payment log", "updated from CMI's status"),
    "error": pgettext_lazy("payment log", "error"),
}
#: ``Operation.kind``: what the shop asked CMI's XML API.
OPERATION_KIND_LABELS = {
    "capture": pgettext_lazy("CMI operation", "capture"),
    "void": pgettext_lazy("CMI operation", "authorisation cancelled (void)"),
    "refund": pgettext_lazy("CMI operation", "refund"),
    "status": pgettext_lazy("CMI operation", "status check"),
}


#: Unicode's FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE: the plain-text <bdi>.
FSI, PDI = "\u2068", "\u2069"


def isolate(value: object) -> str:
    """``value`` as text, isolated from the sentence around it when the active language is
    written right to left: an order number, an oid, a TransId, a card mask or an amount in
    an Arabic sentence, which the bidi algorithm would otherwise split ("100002-1)" shown
    as "-100002" and "1)").

    The plain-text form of ``<bdi>``, for what cannot hold a tag: translated sentences
    built in Python, ``{% blocktrans %}`` variables, a page title, e-mails. Left-to-right
    languages get the value unchanged (no invisible characters copied with an oid).
    """
    text = str(value)
    return f"{FSI}{text}{PDI}" if text and translation.get_language_bidi() else text


def _label(labels: dict[str, Any], value: object) -> str:
    label = labels.get(str(value))
    return str(label) if label is not None else str(value).replace("_", " ")


def log_kind_label(kind: str) -> str:
    """``"ok"`` -> "return (okUrl)", in the active language."""
    return _label(LOG_KIND_LABELS, kind)


def outcome_label(outcome: str) -> str:
    """``"late_decline"`` -> "late decline, ignored", in the active language."""
    return _label(OUTCOME_LABELS, outcome) if outcome else ""


def operation_kind_label(kind: str) -> str:
    """``"void"`` -> "authorisation cancelled (void)", in the active language."""
    return _label(OPERATION_KIND_LABELS, kind)


def state_label(state: str) -> str:
    """``"partially_refunded"`` -> "partially refunded", in the active language."""
    label = STATE_LABELS.get(str(state))
    return str(label) if label is not None else str(state).replace("_", " ")


#: The site's ``LANGUAGES`` setting last read, and the language codes it offers.
_OFFERED: list[Any] = [None, frozenset()]


def _site_language(lang: str) -> str | None:
    """``lang`` if the site offers it (``LANGUAGES``), else None. The codes are read again
    whenever the setting is another object (``override_settings``)."""
    languages = getattr(settings, "LANGUAGES", ())
    if languages is not _OFFERED[0]:
        _OFFERED[:] = [languages, frozenset(code.split("-")[0] for code, _ in languages)]
    return lang if lang in _OFFERED[1] else None


def paid_in(payment: Payment | str | None) -> str | None:
    """The language the shopper paid in (the payment's ``lang``, or the code itself), if
    the site offers it; else None."""
    code = payment if isinstance(payment, str) else (payment.lang if payment else "")
    return _site_language((code or "").lower())


def gettext_in(lang: str | None, text: str) -> str:
    """``gettext(text)`` in ``lang`` (a code :func:`paid_in` gave), without activating it
    for the thread: what :func:`shopper_language` and ``gettext`` do together, for a
    message built where nothing else needs the language (CMI's callback: Saleor's
    events). ``None``: the active language."""
    if lang is None or not settings.USE_I18N:
        return gettext(text)
    from django.utils.translation import trans_real

    return trans_real.translation(lang).gettext(text)


@contextmanager
def shopper_language(payment: Payment | str | None) -> Iterator[str]:
    """Activate the language the shopper paid in for the block; yield the code.

    ``payment``: the payment (its ``lang``) or the language code itself. A payment with no
    usable language (or a language the site does not offer) leaves the active language
    as it is.
    """
    lang = paid_in(payment)
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
