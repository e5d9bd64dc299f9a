"""The one seam each platform fills: what to do when a payment changes.

The contract
------------
The shared layer hands a platform **one value per change**: a frozen
:class:`PaymentChange` holding the payment (saved, locked), its status before and after,
the change's :class:`~cmi_core.effects.Effect` s together (an approval with auto capture
is *one* change with ``authorised`` and ``captured``), CMI's result when there is one,
who started it (:data:`Source`) and the staff or platform operation, if any. A platform
subclasses :class:`PaymentHook` and registers an instance from its
``AppConfig.ready()``::

    class ShopHook(PaymentHook):
        def on_authorised(self, change: PaymentChange, effect: Effect) -> None:
            place_the_order(change.payment)

        def on_captured(self, change: PaymentChange, effect: Effect) -> None:
            record_the_payment(change.payment, effect.amount)

    register_hook("shop", ShopHook())

:meth:`PaymentHook.handle` is the one method the shared layer calls; its default calls
``on_<kind>(change, effect)`` for each effect, in order (:class:`~cmi_core.EffectKind`:
authorised, captured, released, declined, refunded, voided, flagged). A platform may
override :meth:`~PaymentHook.handle` itself (to see the whole change at once) or only the
handlers it needs; the others do nothing. A method named ``on_<something>`` that matches
no effect kind, or one of the old per-event names (``authorised``, ``captured``...,
``needs_attention``), is a :class:`TypeError` when the class is created: a misspelt
handler fails at import, never silently.

When and how it runs
--------------------
The hook runs inside the transaction that holds the payment row locked, after the row
is saved, before :mod:`cmi_django.signals` are sent. An exception from the hook of a
*verified* callback or return rolls everything back and the reply to CMI is
``FAILURE``; a card was authorised, so after the rollback the payment is flagged (needs
attention, with the exception's class and message) for staff to check and void, unless
the exception is a :class:`RetryableHookError` (the platform is down for a while: CMI's
retries, or Saleor's process-session call, will bring the news again). After a staff
operation CMI already acted: the hook's failure is recorded on the operation and raised
to the caller, the payment's change stays.

``change.result`` is the verified :class:`cmi_core.CallbackResult` of the callback or
okUrl POST; when the news comes from CMI's status API (``refresh``, ``cmi_reconcile``, a
platform's own status call) it is one built from that answer (``fields`` then holds the
answer's Extra); None for staff operations and flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from cmi_core.effects import Effect, EffectKind

if TYPE_CHECKING:
    from cmi_core import CallbackResult, PaymentStatus
    from cmi_django.models import Operation, Payment

__all__ = [
    "SOURCES",
    "PaymentChange",
    "PaymentHook",
    "RetryableHookError",
    "Source",
    "get_hook",
    "register_hook",
]

#: Who started a change:
#:
#: - ``callback``: CMI's server-to-server callback (guide §4.2.1);
#: - ``return``: the shopper's okUrl POST, before the callback (guide §4.2.2);
#: - ``staff``: a staff operation (dashboards, the Django admin, code calling
#:   ``capture``/``void``/``refund``/``flag``) and what follows from it;
#: - ``platform``: the platform asked for it itself and learns the outcome from its own
#:   call's answer (Saleor's ``transactionChargeRequested``, its process-session call);
#: - ``sync``: CMI's status report asked on demand (``refresh``, a staff "refresh");
#: - ``reconcile``: CMI's status report asked by ``manage.py cmi_reconcile``.
Source = Literal["callback", "return", "staff", "platform", "sync", "reconcile"]
SOURCES: tuple[Source, ...] = ("callback", "return", "staff", "platform", "sync", "reconcile")


class RetryableHookError(Exception):
    """A hook's temporary failure: roll back and answer ``FAILURE``, but do not flag.

    Raise it (or subclass it) when trying the same callback again later can succeed, e.g.
    the platform's API is unreachable. Any other exception flags the payment.
    """


@dataclass(frozen=True)
class PaymentChange:
    """One change of one payment, as the platform hook receives it.

    ``effects`` is :func:`cmi_core.effects.effects` of ``before`` -> ``after`` (never
    empty: no effect, no call). ``operation`` is the :class:`~cmi_django.models.Operation`
    that made the change (a capture, void, refund, or the status query), if any.
    """

    payment: Payment
    before: PaymentStatus
    after: PaymentStatus
    effects: tuple[Effect, ...]
    source: Source
    result: CallbackResult | None = None
    operation: Operation | None = None

    def effect(self, kind: EffectKind | str) -> Effect | None:
        """This change's effect of ``kind``, or None."""
        wanted = EffectKind(kind)
        return next((e for e in self.effects if e.kind is wanted), None)

    def has(self, kind: EffectKind | str) -> bool:
        """Whether the change has an effect of ``kind``."""
        return self.effect(kind) is not None


_HANDLERS = frozenset(f"on_{kind.value}" for kind in EffectKind)
_OLD_NAMES = frozenset(
    ("authorised", "captured", "declined", "refunded", "voided", "needs_attention")
)


class PaymentHook:
    """The platform hook: :meth:`handle` one :class:`PaymentChange` at a time.

    Subclasses override :meth:`handle`, or the ``on_<effect kind>`` handlers they need;
    the defaults do nothing. An unknown ``on_*`` name is a ``TypeError`` at class creation.
    """

    handlers: ClassVar[frozenset[str]] = _HANDLERS

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in vars(cls):
            if name.startswith("on_") and name not in _HANDLERS:
                raise TypeError(
                    f"{cls.__qualname__}.{name} handles no effect: the handlers are "
                    f"{', '.join(sorted(_HANDLERS))}"
                )
            if name in _OLD_NAMES:
                new = "on_flagged" if name == "needs_attention" else f"on_{name}"
                raise TypeError(
                    f"{cls.__qualname__}.{name} is the old hook contract: write "
                    f"{new}(self, change, effect) (see cmi_django.hooks)"
                )

    def handle(self, change: PaymentChange) -> None:
        """Call ``on_<kind>(change, effect)`` for each of the change's effects, in order."""
        for effect in change.effects:
            getattr(self, f"on_{effect.kind.value}")(change, effect)

    def on_authorised(self, change: PaymentChange, effect: Effect) -> None:
        """The shopper paid: CMI holds ``effect.amount`` (place the order here)."""

    def on_captured(self, change: PaymentChange, effect: Effect) -> None:
        """``effect.amount`` was captured (callback ``ACTION=POSTAUTH``, API, status)."""

    def on_released(self, change: PaymentChange, effect: Effect) -> None:
        """A partial capture: CMI lets go of the rest of the hold (``effect.amount``)."""

    def on_declined(self, change: PaymentChange, effect: Effect) -> None:
        """An attempt failed (``change.result`` says why); the shopper may try again."""

    def on_refunded(self, change: PaymentChange, effect: Effect) -> None:
        """``effect.amount`` was given back (this refund only, not the running total)."""

    def on_voided(self, change: PaymentChange, effect: Effect) -> None:
        """The authorisation or same-day capture was cancelled."""

    def on_flagged(self, change: PaymentChange, effect: Effect) -> None:
        """The payment needs attention (``effect.reason``): staff must look."""


_HOOKS: dict[str, PaymentHook] = {}
_DEFAULT = PaymentHook()


def register_hook(platform: str, hook: PaymentHook) -> None:
    """Use ``hook`` for payments whose ``platform`` is ``platform`` (replaces any other)."""
    _HOOKS[platform] = hook


def get_hook(platform: str) -> PaymentHook:
    """The hook registered for ``platform``, or a no-op one."""
    return _HOOKS.get(platform, _DEFAULT)
