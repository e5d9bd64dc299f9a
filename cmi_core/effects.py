"""What a move of the state machine means to a shop, and what a payment still allows.

:func:`effects` turns one transition (the status before, the status after) into the
things a platform acts on, in a fixed order: the shopper's card was authorised, money was
captured (and the rest of the hold released, after a partial capture), an attempt was
declined, money was refunded, the payment was voided, staff were alerted. One callback
with ``ACTION=POSTAUTH`` (guide §4.2.1, auto capture) is one transition, so its effects
come together: ``authorised`` and ``captured``. The amounts are those of this move only,
never running totals.

:func:`allowed_actions` says which merchant operations (guide §5: PostAuth, Void,
Credit; and the status query, always) the state machine and the amounts allow now.

Both are pure: values in, values out, no framework. Every state pair is table-tested in
``tests/core/test_effects.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from cmi_core.states import EventType, PaymentState, PaymentStatus, allowed_events

__all__ = ["Action", "Effect", "EffectKind", "allowed_actions", "effects"]


class EffectKind(StrEnum):
    """One thing a transition did; a platform hook's handler is ``on_<value>``."""

    AUTHORISED = "authorised"  # the card was authorised: CMI holds the money
    CAPTURED = "captured"  # money was taken (PostAuth: callback or API)
    RELEASED = "released"  # after a partial capture, the rest of the hold is let go
    DECLINED = "declined"  # an attempt failed; the shopper may try again
    REFUNDED = "refunded"  # money was given back (Credit)
    VOIDED = "voided"  # the authorisation or same-day capture was cancelled
    FLAGGED = "flagged"  # the payment needs attention (or a new reason was added)


@dataclass(frozen=True, slots=True)
class Effect:
    """One effect of a transition: ``amount`` for authorised, captured, released and
    refunded (this move's amount); ``reason`` for flagged."""

    kind: EffectKind
    amount: Decimal | None = None
    reason: str = ""


def effects(before: PaymentStatus, after: PaymentStatus) -> tuple[Effect, ...]:
    """The effects of moving from ``before`` to ``after``, in :class:`EffectKind` order.

    No change, no effect: a duplicate callback or a status sync that confirms what the
    shop knows yields ``()``.

    - authorised: ``after.authorised`` became non-zero (amount: what is held);
    - captured: ``captured`` grew (amount: by how much);
    - released: the first capture took less than was authorised (amount: the rest,
      which CMI lets go, guide §5.2);
    - declined: ``declined_attempts`` grew;
    - refunded: ``refunded`` grew (amount: by how much);
    - voided: the state became VOIDED;
    - flagged: the state became NEEDS_ATTENTION, or its reason changed (reason: the
      reason now held).
    """
    found: list[Effect] = []
    if after.authorised and not before.authorised:
        found.append(Effect(EffectKind.AUTHORISED, after.authorised))
    if after.captured > before.captured:
        found.append(Effect(EffectKind.CAPTURED, after.captured - before.captured))
        if not before.captured and after.captured < after.authorised:
            found.append(Effect(EffectKind.RELEASED, after.authorised - after.captured))
    if after.declined_attempts > before.declined_attempts:
        found.append(Effect(EffectKind.DECLINED))
    if after.refunded > before.refunded:
        found.append(Effect(EffectKind.REFUNDED, after.refunded - before.refunded))
    if after.state is PaymentState.VOIDED and before.state is not PaymentState.VOIDED:
        found.append(Effect(EffectKind.VOIDED))
    if after.state is PaymentState.NEEDS_ATTENTION and (
        before.state is not PaymentState.NEEDS_ATTENTION
        or after.attention_reason != before.attention_reason
    ):
        found.append(Effect(EffectKind.FLAGGED, reason=after.attention_reason))
    return tuple(found)


class Action(StrEnum):
    """A merchant operation on a payment (guide §5), in the order dashboards show them."""

    CAPTURE = "capture"  # PostAuth
    VOID = "void"  # Void
    REFUND = "refund"  # Credit
    REFRESH = "refresh"  # ORDERSTATUS: ask CMI, always possible


def allowed_actions(status: PaymentStatus) -> frozenset[Action]:
    """The operations the state machine and the amounts allow in ``status``.

    Capture while something is capturable, void where the table has VOID, refund while
    something is refundable; refresh always (CMI is the authority, guide §5).
    """
    events = allowed_events(status.state)
    actions = {Action.REFRESH}
    if EventType.CAPTURE in events and status.capturable > 0:
        actions.add(Action.CAPTURE)
    if EventType.VOID in events:
        actions.add(Action.VOID)
    if EventType.REFUND in events and status.refundable > 0:
        actions.add(Action.REFUND)
    return frozenset(actions)
