"""The one seam each platform fills: what to do when a payment moves.

Each adapter subclasses :class:`PaymentHook`, overrides what it needs and registers it
from its ``AppConfig.ready()`` with ``register_hook("oscar", OscarHook())``. The shared
services call the hook of ``payment.platform`` inside the transaction that holds the
payment row locked; an exception from a callback's hook rolls everything back and the
reply to CMI is ``FAILURE``. A card was authorised, so after the rollback the payment is
flagged (needs attention, with the exception's class and message) for staff to check and
void, unless the exception is a :class:`RetryableHookError` (the platform is down for a
while: CMI's retries, or Saleor's process-session call, will bring the news again).

``result`` is the verified :class:`cmi_core.CallbackResult` of the callback or okUrl POST;
when the news comes from CMI's status API instead (``refresh``, ``cmi_reconcile``), it is
a ``CallbackResult`` built from that answer (``fields`` then holds the answer's Extra).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cmi_core import CallbackResult
    from cmi_django.models import Payment

__all__ = ["PaymentHook", "RetryableHookError", "get_hook", "register_hook"]


class RetryableHookError(Exception):
    """A hook's temporary failure: roll back and answer ``FAILURE``, but do not flag.

    Raise it (or subclass it) when trying the same callback again later can succeed, e.g.
    the platform's API is unreachable. Any other exception flags the payment.
    """


class PaymentHook:
    """No-op defaults; adapters override the methods they need."""

    def authorised(self, payment: Payment, result: CallbackResult) -> None:
        """The shopper paid: CMI holds ``payment.amount`` (place the order here)."""

    def captured(self, payment: Payment, amount: Decimal) -> None:
        """``amount`` was captured (callback ``ACTION=POSTAUTH`` or a staff capture)."""

    def declined(self, payment: Payment, result: CallbackResult) -> None:
        """An attempt failed; the shopper may try again with the same payment."""

    def refunded(self, payment: Payment, amount: Decimal) -> None:
        """``amount`` was given back (this refund only, not the running total)."""

    def voided(self, payment: Payment) -> None:
        """The authorisation or same-day capture was cancelled."""

    def needs_attention(self, payment: Payment, reason: str) -> None:
        """The payment was flagged (amount mismatch, failed capture...): staff must look."""


_HOOKS: dict[str, PaymentHook] = {}
_DEFAULT = PaymentHook()


def register_hook(platform: str, hook: PaymentHook) -> None:
    """Use ``hook`` for payments whose ``platform`` is ``platform`` (replaces any other)."""
    _HOOKS[platform] = hook


def get_hook(platform: str) -> PaymentHook:
    """The hook registered for ``platform``, or a no-op one."""
    return _HOOKS.get(platform, _DEFAULT)
