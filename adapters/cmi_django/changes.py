"""Handing a payment's change to its platform: one :class:`~cmi_django.hooks.PaymentChange`.

:func:`notify` builds the change from the status before and after
(:func:`cmi_core.effects.effects` says what happened), calls the platform hook's
:meth:`~cmi_django.hooks.PaymentHook.handle` once, then sends :mod:`cmi_django.signals`
(``payment_changed`` once, then one signal per effect). A change with no effect calls
nothing. :func:`notify_or_fail` is the same for verified callbacks and returns, whose
hook failure must roll the transaction back and flag the payment afterwards
(:class:`PlatformHookError`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cmi_core.effects import EffectKind, effects
from cmi_django import signals
from cmi_django.hooks import PaymentChange, Source, get_hook
from cmi_django.models import Payment

if TYPE_CHECKING:
    from cmi_core import CallbackResult, PaymentStatus
    from cmi_django.models import Operation

__all__ = ["PlatformHookError", "error_text", "notify", "notify_or_fail", "source_of"]

#: Labels callers give to an approval learned without a callback (``refresh(source=...)``,
#: ``approve_without_callback(source=...)``) -> who started the change. Any other label
#: names a platform's own call ("saleor-process"): ``platform``.
_LABELS: dict[str, Source] = {
    "okurl": "return",
    "refresh": "sync",
    "reconcile": "reconcile",
    "staff": "staff",
}


def source_of(label: str) -> Source:
    """Who started a change, from a caller's label (see ``_LABELS``)."""
    return _LABELS.get(label, "platform")


def error_text(exc: BaseException) -> str:
    """An exception as one line for logs and rows: its class and message, cut to 1000."""
    return f"{type(exc).__name__}: {exc}"[:1000]


class PlatformHookError(Exception):
    """The platform hook raised after a *verified* callback or return was applied.

    Raised inside the transaction (so everything rolls back); carries the payment's pk and
    the hook's own exception, so that the inbound handlers can flag the payment
    afterwards (a card was authorised: staff must know).
    """

    def __init__(self, payment_pk: int, error: Exception) -> None:
        super().__init__(error_text(error))
        self.payment_pk = payment_pk
        self.error = error


def notify(
    payment: Payment,
    before: PaymentStatus,
    after: PaymentStatus,
    *,
    source: Source,
    result: CallbackResult | None = None,
    operation: Operation | None = None,
) -> PaymentChange | None:
    """Hand the change ``before`` -> ``after`` to the platform hook, then send the signals.

    Returns the change, or None when nothing happened (no hook call, no signal).
    """
    found = effects(before, after)
    if not found:
        return None
    change = PaymentChange(payment, before, after, found, source, result, operation)
    get_hook(payment.platform).handle(change)
    sender = Payment
    signals.payment_changed.send(sender, payment=payment, change=change)
    for effect in found:
        match effect.kind:
            case EffectKind.AUTHORISED:
                signals.payment_authorised.send(sender, payment=payment, result=result)
            case EffectKind.CAPTURED:
                signals.payment_captured.send(sender, payment=payment, amount=effect.amount)
            case EffectKind.DECLINED:
                signals.payment_declined.send(sender, payment=payment, result=result)
            case EffectKind.REFUNDED:
                signals.payment_refunded.send(sender, payment=payment, amount=effect.amount)
            case EffectKind.VOIDED:
                signals.payment_voided.send(sender, payment=payment)
            case EffectKind.FLAGGED:
                signals.payment_needs_attention.send(sender, payment=payment, reason=effect.reason)
    return change


def notify_or_fail(
    payment: Payment,
    before: PaymentStatus,
    after: PaymentStatus,
    *,
    source: Source,
    result: CallbackResult | None = None,
) -> None:
    """:func:`notify` for a verified callback/return: a hook error becomes PlatformHookError."""
    try:
        notify(payment, before, after, source=source, result=result)
    except Exception as exc:
        raise PlatformHookError(payment.pk, exc) from exc
