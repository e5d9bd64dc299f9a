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
from cmi_django.models import Operation, Payment

__all__ = [
    "ACTIONS",
    "ActionResult",
    "allowed_actions",
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
    """What :func:`staff_action` did: ``ok`` and a message for staff (no secrets)."""

    ok: bool
    message: str
    operation: Operation | None = None


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


def _done(payment: Payment, action: str, operation: Operation) -> str:
    state = PaymentState(payment.state).value
    amount = operation.amount if operation.amount is not None else ""
    texts = {
        "capture": _("Capture of %(amount)s on payment %(oid)s done: it is now %(state)s."),
        "void": _("Payment %(oid)s voided: it is now %(state)s."),
        "refund": _("Refund of %(amount)s on payment %(oid)s done: it is now %(state)s."),
        "refresh": _("Payment %(oid)s refreshed from CMI: it is now %(state)s."),
    }
    return texts[action] % {"amount": amount, "oid": payment.oid, "state": state}


def staff_action(
    payment: Payment,
    action: str,
    amount_text: str | None = None,
    *,
    user: str = "",
    key: str | None = None,
) -> ActionResult:
    """Run ``action`` on ``payment`` through :mod:`cmi_django.services`; never raises.

    ``amount_text`` as typed: empty captures everything authorised, or refunds everything
    still refundable. ``key`` (the form's idempotency key, at most 100 characters kept):
    an operation of this kind that already succeeded with it is not sent again.
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
                True, _("This %(action)s was already done (form sent twice).") % {"action": action}
            )
    try:
        amount = _amount(amount_text, payment)
    except ValidationError:
        return ActionResult(False, _("Enter a valid amount, such as 29.95."))
    last = payment.operations.order_by("-id").values_list("id", flat=True).first() or 0
    try:
        if action == "capture":
            operation = services.capture(payment, amount, user=user, key=key)
        elif action == "void":
            operation = services.void(payment, user=user, key=key)
        elif action == "refund":
            refund = amount if amount is not None else payment.status.refundable
            if refund <= 0:
                return ActionResult(False, _("Nothing can be refunded now."))
            operation = services.refund(payment, refund, user=user, key=key)
        else:
            operation = services.refresh(payment, user=user)
    except TransitionError as exc:
        return ActionResult(False, _("Not possible now: %(reason)s") % {"reason": exc.reason})
    except APITransportError as exc:
        return ActionResult(
            False, _("CMI could not be reached: %(error)s") % {"error": _api_text(exc)}
        )
    except APIError as exc:
        return ActionResult(False, _("CMI refused: %(message)s") % {"message": _api_text(exc)})
    except ImproperlyConfigured as exc:  # our own messages: the setting's name, no value
        return ActionResult(False, str(exc)[:300])
    except ValidationError as exc:
        return ActionResult(False, _("Not possible: %(reason)s") % {"reason": exc})
    except Exception as exc:
        logger.exception("staff %s of CMI payment %s failed", action, payment.oid)
        accepted = payment.operations.filter(id__gt=last, kind=kind, succeeded=True).exists()
        payment.refresh_from_db()
        if accepted:
            text = _(
                "CMI accepted the %(action)s (the payment is now %(state)s), but the shop "
                "could not record it (%(error)s): see the server log."
            )
        else:
            text = _("The %(action)s failed (%(error)s): see the server log.")
        return ActionResult(
            False,
            text % {"action": action, "state": payment.state, "error": type(exc).__name__},
        )
    return ActionResult(True, _done(payment, action, operation), operation)


def posted_staff_action(request: HttpRequest, payment: Payment, action: str) -> ActionResult:
    """:func:`staff_action` with what a dashboard's form posted (``amount``, ``key``), by
    the signed-in user."""
    return staff_action(
        payment,
        action,
        request.POST.get("amount", ""),
        user=request.user.get_username(),
        key=request.POST.get("key"),
    )
