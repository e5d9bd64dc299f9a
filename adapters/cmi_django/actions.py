"""Staff actions on a payment, written once for every dashboard (Oscar, Wagtail...).

- :func:`allowed_actions`: which of ``capture``, ``void``, ``refund``, ``refresh`` make
  sense now (the core's rule, :func:`cmi_core.effects.allowed_actions`) (a dashboard
  shows those buttons only).
- :func:`staff_action`: run one, from what a staff form posted (the action's name, the
  amount as typed, the form's idempotency key), and return an :class:`ActionResult` whose
  ``message`` can be shown to staff as is: CMI's refusals with CMI's own words and code,
  the state machine's reasons, configuration problems; never a secret, never a traceback.
  :func:`posted_staff_action` reads those from the request of every dashboard's form
  (fields ``amount`` and ``key``, the signed-in user).

Dangerous actions ask first: :func:`confirmation_text` says exactly what a void or a
refund of everything still refundable will do, with the amount as money, and
:func:`posted_staff_action` returns it (``ActionResult.confirm``) instead of acting until
the form comes back with ``confirmed=1`` (the dashboard's confirmation step). A refund
needs its amount typed: an empty field refunds nothing.

The key makes a form submitted twice (a double click, a reload that re-POSTs) one
operation: each rendered form carries a fresh key (:func:`new_action_key`), and a key
whose operation already succeeded is answered "already done" without asking CMI again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils.translation import gettext as _

from cmi_core import (
    APIError,
    APITransportError,
    PaymentState,
    TransitionError,
    ValidationError,
)
from cmi_core.effects import allowed_actions as core_allowed_actions
from cmi_core.money import check_amount, get_currency, parse_amount
from cmi_django import services
from cmi_django.display import format_money
from cmi_django.i18n import amount_error, isolate, state_label
from cmi_django.models import Operation, Payment
from cmi_django.operations import accepted_anyway

__all__ = [
    "ACTIONS",
    "ActionResult",
    "allowed_actions",
    "confirmation_text",
    "new_action_key",
    "posted_staff_action",
    "staff_action",
]

logger = logging.getLogger("cmi_django")

#: Every staff action, in the order dashboards show them.
ACTIONS = ("capture", "void", "refund", "refresh")
_KIND = {"capture": "capture", "void": "void", "refund": "refund", "refresh": "status"}


@dataclass(frozen=True)
class ActionResult:
    """What :func:`staff_action` did: ``ok`` and a message for staff (no secrets).

    ``confirm``: nothing was done; staff must confirm this (what the action will do).
    """

    ok: bool
    message: str
    operation: Operation | None = None
    confirm: str = ""


def allowed_actions(payment: Payment) -> set[str]:
    """The actions the state machine and the amounts allow now (``refresh`` always):
    :func:`cmi_core.effects.allowed_actions`, as names."""
    return {action.value for action in core_allowed_actions(payment.status)}


def new_action_key() -> str:
    """A fresh idempotency key for one rendered action form."""
    return uuid.uuid4().hex


def _api_text(exc: APIError) -> str:
    """CMI's own words (ErrMsg), with its code when there is one."""
    parts = [exc.err_msg or str(exc)]
    if exc.error_code:
        parts.append(f"({exc.error_code})")
    return " ".join(parts)[:300]


def _amount(text: str | None, payment: Payment) -> Decimal | None:
    """The typed amount (``29.95`` or ``29,95``), None when empty; ValidationError if bad."""
    cleaned = (text or "").strip()
    if not cleaned:
        return None
    amount = parse_amount(cleaned)
    check_amount(amount, get_currency(payment.currency))
    return amount


def _action_name(action: str) -> str:
    names = {
        "capture": _("capture"),
        "void": _("cancellation of the authorisation"),
        "refund": _("refund"),
        "refresh": _("refresh"),
    }
    return str(names.get(action, action))


def confirmation_text(payment: Payment, action: str, amount_text: str | None = None) -> str:
    """What a dangerous action will do, for staff to confirm; "" when it needs no
    confirmation (a capture, a partial refund, a refresh, an amount that does not parse).

    Dangerous: a void (CMI cancels the authorisation: the shopper is not charged, and it
    cannot be undone) and a refund of everything still refundable.
    """

    def money(amount: Decimal) -> str:
        return isolate(format_money(amount, payment.currency))

    if action == "void":
        held = payment.captured_amount or payment.authorised_amount or payment.amount
        return _(
            "Cancel the authorisation of %(amount)s on payment %(oid)s: the card will not "
            "be charged and the payment cannot be captured afterwards. This cannot be undone."
        ) % {"amount": money(held), "oid": isolate(payment.oid)}
    if action == "refund":
        try:
            asked = _amount(amount_text, payment)
        except ValidationError:
            return ""
        refundable = payment.status.refundable
        if asked is not None and refundable > 0 and asked == refundable:
            return _(
                "Refund %(amount)s to the card, everything still refundable on payment "
                "%(oid)s. This cannot be undone."
            ) % {"amount": money(asked), "oid": isolate(payment.oid)}
    return ""


def _done(payment: Payment, action: str, operation: Operation) -> str:
    state = state_label(PaymentState(payment.state).value)
    amount = isolate(format_money(operation.amount, payment.currency)) if operation.amount else ""
    texts = {
        "capture": _("Capture of %(amount)s on payment %(oid)s done: it is now %(state)s."),
        "void": _("Authorisation of payment %(oid)s cancelled: it is now %(state)s."),
        "refund": _("Refund of %(amount)s on payment %(oid)s done: it is now %(state)s."),
        "refresh": _("Payment %(oid)s refreshed from CMI: it is now %(state)s."),
    }
    return texts[action] % {"amount": amount, "oid": isolate(payment.oid), "state": state}


def _failed(payment: Payment, action: str, exc: Exception) -> ActionResult:
    """What staff is told when ``action`` raised ``exc`` and CMI accepted nothing."""
    if isinstance(exc, TransitionError):
        return ActionResult(False, _("Not possible now: %(reason)s") % {"reason": exc.reason})
    if isinstance(exc, APITransportError):
        return ActionResult(
            False, _("CMI could not be reached: %(error)s") % {"error": _api_text(exc)}
        )
    if isinstance(exc, APIError):
        return ActionResult(False, _("CMI refused: %(message)s") % {"message": _api_text(exc)})
    if isinstance(exc, ImproperlyConfigured):  # our own messages: the setting's name, no value
        return ActionResult(False, str(exc)[:300])
    if isinstance(exc, ValidationError):
        return ActionResult(False, amount_error(exc, payment.currency))
    logger.error("staff %s of CMI payment %s failed", action, payment.oid, exc_info=exc)
    payment.refresh_from_db()
    text = _("The %(action)s failed: see the server log.")
    return ActionResult(False, text % {"action": _action_name(action)})


def staff_action(
    payment: Payment,
    action: str,
    amount_text: str | None = None,
    *,
    user: str = "",
    key: str | None = None,
) -> ActionResult:
    """Run ``action`` on ``payment`` through :mod:`cmi_django.services`; never raises.

    ``amount_text`` as typed: empty captures everything authorised; a refund needs its
    amount (an empty field refunds nothing). ``key`` (the form's idempotency key, at most
    100 characters kept): an operation of this kind that already succeeded with it is not
    sent again.
    ``payment`` is refreshed from the database afterwards.
    """
    if action not in ACTIONS:
        return ActionResult(False, _("Unknown action."))
    key = (key or "")[:100] or None
    kind = _KIND[action]
    if key is not None and action != "refresh":
        done = payment.operations.filter(kind=kind, key=key, succeeded=True).first()
        if done is not None:
            return ActionResult(
                True,
                _("This %(action)s was already done (form sent twice).")
                % {"action": _action_name(action)},
            )
    try:
        amount = _amount(amount_text, payment)
    except ValidationError as exc:
        return ActionResult(False, amount_error(exc, payment.currency))
    last = payment.operations.order_by("-id").values_list("id", flat=True).first() or 0
    try:
        if action == "capture":
            operation = services.capture(payment, amount, user=user, key=key)
        elif action == "void":
            operation = services.void(payment, user=user, key=key)
        elif action == "refund":
            if amount is None:
                return ActionResult(False, _("Enter the amount to refund."))
            operation = services.refund(payment, amount, user=user, key=key)
        else:
            operation = services.refresh(payment, user=user)
    except Exception as exc:  # noqa: BLE001 - told to staff, never a 500
        # First what was recorded: whatever raised after CMI accepted (even a
        # TransitionError, an APIError) must not read as a refusal. Only this request's
        # own operation: its form's key (another staff member's operation made meanwhile
        # is no proof this one was sent), else its user's.
        accepted = accepted_anyway(
            payment,
            kind,
            exc,
            label=f"staff {action}",
            key=key if action != "refresh" else None,
            user=user,
            since=last,
        )
        if accepted is not None:
            text = _(
                "CMI accepted the %(action)s (the payment is now %(state)s), but the shop "
                "could not record it: see the server log."
            )
            return ActionResult(
                False,
                text % {"action": _action_name(action), "state": state_label(payment.state)},
            )
        return _failed(payment, action, exc)
    return ActionResult(True, _done(payment, action, operation), operation)


def posted_staff_action(request: HttpRequest, payment: Payment, action: str) -> ActionResult:
    """:func:`staff_action` with what a dashboard's form posted (``amount``, ``key``), by
    the signed-in user; a dangerous action not yet ``confirmed`` is only described
    (``ActionResult.confirm``), for the dashboard's confirmation step."""
    text = confirmation_text(payment, action, request.POST.get("amount", ""))
    if text and request.POST.get("confirmed") != "1":
        return ActionResult(False, "", confirm=text)
    return staff_action(
        payment,
        action,
        request.POST.get("amount", ""),
        user=request.user.get_username(),
        key=request.POST.get("key"),
    )
