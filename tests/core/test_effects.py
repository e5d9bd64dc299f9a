"""cmi_core.effects: the effects of every legal move from every state, and the actions
each state allows (h11 style: one table, every state)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cmi_core.effects import Action, Effect, EffectKind, allowed_actions, effects
from cmi_core.errors import TransitionError
from cmi_core.states import (
    Event,
    EventType,
    PaymentState,
    PaymentStatus,
    allowed_events,
    apply,
)

AMOUNT = Decimal("100.00")
_NEW = PaymentStatus.new(AMOUNT)
_REDIRECTED = apply(_NEW, Event.redirect())
_AUTHORISED = apply(_REDIRECTED, Event.authorised(AMOUNT))
_CAPTURED = apply(_AUTHORISED, Event.capture())

#: One status in each state.
STATUS = {
    PaymentState.CREATED: _NEW,
    PaymentState.REDIRECTED: _REDIRECTED,
    PaymentState.DECLINED: apply(_REDIRECTED, Event.declined()),
    PaymentState.AUTHORISED: _AUTHORISED,
    PaymentState.CAPTURED: _CAPTURED,
    PaymentState.PARTIALLY_REFUNDED: apply(_CAPTURED, Event.refund(Decimal("30.00"))),
    PaymentState.REFUNDED: apply(_CAPTURED, Event.refund(AMOUNT)),
    PaymentState.VOIDED: apply(_AUTHORISED, Event.void()),
    PaymentState.NEEDS_ATTENTION: apply(_AUTHORISED, Event.flag("amount")),
}

EVENTS = {
    "redirect": Event.redirect(),
    "declined": Event.declined(),
    "authorised": Event.authorised(AMOUNT),
    "capture": Event.capture(),
    "capture_40": Event.capture(Decimal("40.00")),
    "void": Event.void(),
    "refund_30": Event.refund(Decimal("30.00")),
    "flag": Event.flag("check"),
    "sync_none": Event.status_sync(None),
    "sync_pre": Event.status_sync("PRE", AMOUNT),
    "sync_post": Event.status_sync("POST", AMOUNT, AMOUNT),
    "sync_rfnd": Event.status_sync("RFND", AMOUNT, AMOUNT, Decimal("30.00")),
    "sync_void": Event.status_sync("VOID"),
}

#: (state, event) -> the effects, as (kind, amount or reason); a pair not listed is
#: illegal (the state machine refuses it). Amounts that go down (a PRE report after a
#: capture) are no effect: the status says it, nothing was taken or given.
EXPECTED: dict[tuple[str, str], tuple[tuple[str, str | None], ...]] = {
    ("CREATED", "redirect"): (),
    ("CREATED", "declined"): (("declined", None),),
    ("CREATED", "authorised"): (("authorised", "100.00"),),
    ("CREATED", "flag"): (("flagged", "check"),),
    ("CREATED", "sync_none"): (),
    ("CREATED", "sync_pre"): (("authorised", "100.00"),),
    ("CREATED", "sync_post"): (("authorised", "100.00"), ("captured", "100.00")),
    ("CREATED", "sync_rfnd"): (
        ("authorised", "100.00"),
        ("captured", "100.00"),
        ("refunded", "30.00"),
    ),
    ("CREATED", "sync_void"): (("voided", None),),
    ("REDIRECTED", "redirect"): (),
    ("REDIRECTED", "declined"): (("declined", None),),
    ("REDIRECTED", "authorised"): (("authorised", "100.00"),),
    ("REDIRECTED", "flag"): (("flagged", "check"),),
    ("REDIRECTED", "sync_none"): (),
    ("REDIRECTED", "sync_pre"): (("authorised", "100.00"),),
    ("REDIRECTED", "sync_post"): (("authorised", "100.00"), ("captured", "100.00")),
    ("REDIRECTED", "sync_rfnd"): (
        ("authorised", "100.00"),
        ("captured", "100.00"),
        ("refunded", "30.00"),
    ),
    ("REDIRECTED", "sync_void"): (("voided", None),),
    ("DECLINED", "redirect"): (),
    ("DECLINED", "declined"): (("declined", None),),
    ("DECLINED", "authorised"): (("authorised", "100.00"),),
    ("DECLINED", "flag"): (("flagged", "check"),),
    ("DECLINED", "sync_none"): (),
    ("DECLINED", "sync_pre"): (("authorised", "100.00"),),
    ("DECLINED", "sync_post"): (("authorised", "100.00"), ("captured", "100.00")),
    ("DECLINED", "sync_rfnd"): (
        ("authorised", "100.00"),
        ("captured", "100.00"),
        ("refunded", "30.00"),
    ),
    ("DECLINED", "sync_void"): (("voided", None),),
    ("AUTHORISED", "capture"): (("captured", "100.00"),),
    ("AUTHORISED", "capture_40"): (("captured", "40.00"), ("released", "60.00")),
    ("AUTHORISED", "void"): (("voided", None),),
    ("AUTHORISED", "flag"): (("flagged", "check"),),
    ("AUTHORISED", "sync_none"): (),
    ("AUTHORISED", "sync_pre"): (),
    ("AUTHORISED", "sync_post"): (("captured", "100.00"),),
    ("AUTHORISED", "sync_rfnd"): (("captured", "100.00"), ("refunded", "30.00")),
    ("AUTHORISED", "sync_void"): (("voided", None),),
    ("CAPTURED", "void"): (("voided", None),),
    ("CAPTURED", "refund_30"): (("refunded", "30.00"),),
    ("CAPTURED", "flag"): (("flagged", "check"),),
    ("CAPTURED", "sync_none"): (),
    ("CAPTURED", "sync_pre"): (),
    ("CAPTURED", "sync_post"): (),
    ("CAPTURED", "sync_rfnd"): (("refunded", "30.00"),),
    ("CAPTURED", "sync_void"): (("voided", None),),
    ("PARTIALLY_REFUNDED", "refund_30"): (("refunded", "30.00"),),
    ("PARTIALLY_REFUNDED", "flag"): (("flagged", "check"),),
    ("PARTIALLY_REFUNDED", "sync_none"): (),
    ("PARTIALLY_REFUNDED", "sync_pre"): (),
    ("PARTIALLY_REFUNDED", "sync_post"): (),
    ("PARTIALLY_REFUNDED", "sync_rfnd"): (),
    ("PARTIALLY_REFUNDED", "sync_void"): (("voided", None),),
    ("REFUNDED", "sync_none"): (),
    ("REFUNDED", "sync_pre"): (),
    ("REFUNDED", "sync_post"): (),
    ("REFUNDED", "sync_rfnd"): (),
    ("REFUNDED", "sync_void"): (("voided", None),),
    ("VOIDED", "sync_none"): (),
    ("VOIDED", "sync_pre"): (),
    ("VOIDED", "sync_post"): (("captured", "100.00"),),
    ("VOIDED", "sync_rfnd"): (("captured", "100.00"), ("refunded", "30.00")),
    ("VOIDED", "sync_void"): (),
    ("NEEDS_ATTENTION", "void"): (("voided", None),),
    ("NEEDS_ATTENTION", "flag"): (("flagged", "amount; check"),),
    ("NEEDS_ATTENTION", "sync_none"): (),
    ("NEEDS_ATTENTION", "sync_pre"): (),
    ("NEEDS_ATTENTION", "sync_post"): (("captured", "100.00"),),
    ("NEEDS_ATTENTION", "sync_rfnd"): (("captured", "100.00"), ("refunded", "30.00")),
    ("NEEDS_ATTENTION", "sync_void"): (("voided", None),),
}


def _pairs() -> list[tuple[str, str]]:
    return [(s.name, e) for s in PaymentState for e in EVENTS]


@pytest.mark.parametrize(("state", "event"), _pairs())
def test_effects_of_every_move_from_every_state(state: str, event: str) -> None:
    before = STATUS[PaymentState[state]]
    assert before.state is PaymentState[state]
    try:
        after = apply(before, EVENTS[event])
    except TransitionError:
        assert (state, event) not in EXPECTED
        return
    found = effects(before, after)
    shown = tuple(
        (e.kind.value, str(e.amount) if e.amount is not None else e.reason or None) for e in found
    )
    assert shown == EXPECTED[(state, event)]
    kinds = [e.kind for e in found]
    assert kinds == sorted(kinds, key=list(EffectKind).index)  # always in EffectKind order


def test_the_table_lists_only_legal_moves() -> None:
    for state, event in EXPECTED:
        apply(STATUS[PaymentState[state]], EVENTS[event])  # raises if the table lied


@pytest.mark.parametrize("state", list(PaymentState))
def test_no_change_no_effect(state: PaymentState) -> None:
    assert effects(STATUS[state], STATUS[state]) == ()


def test_auto_capture_approval_is_one_change_with_both_effects() -> None:
    """A callback with ACTION=POSTAUTH: authorised and captured together (guide §4.2.1)."""
    paid = apply(_AUTHORISED, Event.capture())
    assert effects(_REDIRECTED, paid) == (
        Effect(EffectKind.AUTHORISED, AMOUNT),
        Effect(EffectKind.CAPTURED, AMOUNT),
    )


def test_a_new_flag_reason_is_a_new_flagged_effect() -> None:
    flagged = STATUS[PaymentState.NEEDS_ATTENTION]
    assert effects(flagged, apply(flagged, Event.flag("again"))) == (
        Effect(EffectKind.FLAGGED, reason="amount; again"),
    )


#: state -> the actions allowed with the status of STATUS (refresh always).
ACTIONS: dict[PaymentState, set[str]] = {
    PaymentState.CREATED: {"refresh"},
    PaymentState.REDIRECTED: {"refresh"},
    PaymentState.DECLINED: {"refresh"},
    PaymentState.AUTHORISED: {"capture", "void", "refresh"},
    PaymentState.CAPTURED: {"void", "refund", "refresh"},
    PaymentState.PARTIALLY_REFUNDED: {"refund", "refresh"},
    PaymentState.REFUNDED: {"refresh"},
    PaymentState.VOIDED: {"refresh"},
    PaymentState.NEEDS_ATTENTION: {"void", "refresh"},
}


@pytest.mark.parametrize("state", list(PaymentState))
def test_allowed_actions_in_every_state(state: PaymentState) -> None:
    assert {a.value for a in allowed_actions(STATUS[state])} == ACTIONS[state]


@pytest.mark.parametrize("state", list(PaymentState))
def test_allowed_actions_are_the_moves_apply_accepts(state: PaymentState) -> None:
    """What is offered can be done: each action's event is legal with a valid amount."""
    status = STATUS[state]
    offered = allowed_actions(status)
    trial = {
        Action.CAPTURE: Event.capture(),
        Action.VOID: Event.void(),
        Action.REFUND: Event.refund(status.refundable or Decimal("1.00")),
    }
    for action, event in trial.items():
        try:
            apply(status, event)
            legal = True
        except TransitionError:
            legal = False
        assert (action in offered) == legal, (state, action)


def test_nothing_to_capture_or_refund_is_not_offered() -> None:
    """The amounts decide too: an event the table allows with nothing left is not offered."""
    assert EventType.REFUND in allowed_events(PaymentState.CAPTURED)
    empty = PaymentStatus(PaymentState.CAPTURED, AMOUNT, AMOUNT, AMOUNT, AMOUNT)
    assert Action.REFUND not in allowed_actions(empty)
