"""What a staff page needs to show a payment's action buttons, for every dashboard.

:func:`action_context` is the one context Oscar's dashboard and Wagtail's admin render
their capture / void / refund forms from (the same names in both templates); which
actions are offered comes from :func:`cmi_django.actions.allowed_actions` (the state
machine and the amounts), and each render gets a fresh idempotency key.
"""

from __future__ import annotations

from typing import Any

from cmi_core import merchant_message
from cmi_core.money import format_amount, get_currency
from cmi_django.actions import allowed_actions, new_action_key
from cmi_django.display import format_money
from cmi_django.models import Payment

__all__ = ["action_context"]


def action_context(payment: Payment) -> dict[str, Any]:
    """The action buttons' context of ``payment``.

    - ``can_capture``, ``can_void``, ``can_refund``: which forms to show;
    - ``capturable``, ``refundable``: the amounts still open (``Decimal``);
      ``capturable_input``, ``refundable_input``: the same as an amount input's value
      (the currency's decimals, at least its smallest unit);
    - ``decline_reason``: CMI's last refusal in the merchant's words, or ``""``;
    - ``action_key``: a fresh idempotency key (a form sent twice is one operation).
    """
    status = payment.status
    allowed = allowed_actions(payment)
    currency = get_currency(payment.currency)
    declined = bool(payment.proc_return_code) and payment.proc_return_code != "00"
    return {
        "can_capture": "capture" in allowed,
        "can_void": "void" in allowed,
        "can_refund": "refund" in allowed,
        "capturable": status.capturable,
        "refundable": status.refundable,
        "capturable_input": format_amount(max(status.capturable, currency.quantum), currency),
        "refundable_input": format_amount(max(status.refundable, currency.quantum), currency),
        "capturable_money": format_money(status.capturable, payment.currency),
        "refundable_money": format_money(status.refundable, payment.currency),
        "step": format(currency.quantum, "f"),
        "decline_reason": (
            merchant_message(payment.proc_return_code, payment.error_code) if declined else ""
        ),
        "action_key": new_action_key(),
    }
