"""The payment state machine: every (state, event) pair, the amount rules, and properties."""

from __future__ import annotations

import copy
import itertools
from dataclasses import replace
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmi_core.errors import TransitionError, ValidationError
from cmi_core.states import (
    TRANSITIONS,
    Event,
    EventType,
    PaymentState,
    PaymentStatus,
    Rule,
    allowed_events,
    apply,
)

S = PaymentState
E = EventType
D = Decimal
ORDER = D("100.00")

# One payment in each state, built by hand (not through apply) for an order of 100.00.
START: dict[PaymentState, PaymentStatus] = {
    S.CREATED: PaymentStatus(S.CREATED, ORDER),
    S.REDIRECTED: PaymentStatus(S.REDIRECTED, ORDER),
    S.DECLINED: PaymentStatus(S.DECLINED, ORDER, declined_attempts=1),
    S.AUTHORISED: PaymentStatus(S.AUTHORISED, ORDER, authorised=ORDER),
    S.CAPTURED: PaymentStatus(S.CAPTURED, ORDER, authorised=ORDER, captured=ORDER),
    S.PARTIALLY_REFUNDED: PaymentStatus(
        S.PARTIALLY_REFUNDED, ORDER, authorised=ORDER, captured=ORDER, refunded=D(30)
    ),
    S.REFUNDED: PaymentStatus(S.REFUNDED, ORDER, authorised=ORDER, captured=ORDER, refunded=ORDER),
    S.VOIDED: PaymentStatus(S.VOIDED, ORDER, authorised=ORDER),
    S.NEEDS_ATTENTION: PaymentStatus(
        S.NEEDS_ATTENTION, ORDER, authorised=ORDER, attention_reason="amount mismatch"
    ),
}

# One event of each type.
EVENT: dict[EventType, Event] = {
    E.REDIRECT: Event.redirect(),
    E.CALLBACK_DECLINED: Event.declined(),
    E.CALLBACK_AUTHORISED: Event.authorised(D("100")),
    E.CAPTURE: Event.capture(),
    E.VOID: Event.void(),
    E.REFUND: Event.refund(D(20)),
    E.FLAG: Event.flag("check"),
    E.STATUS_SYNC: Event.status_sync("POST", ORDER, ORDER, D(0)),
}

# What each legal pair must give: the new state and the fields that change. Written out
# independently of cmi_core.states.TRANSITIONS; every pair not listed must be refused.
SYNCED: dict[str, Any] = {"authorised": ORDER, "captured": ORDER, "refunded": D(0)}
PENDING: dict[EventType, tuple[PaymentState, dict[str, Any]]] = {
    E.REDIRECT: (S.REDIRECTED, {}),
    E.CALLBACK_DECLINED: (S.DECLINED, {"declined_attempts": "+1"}),
    E.CALLBACK_AUTHORISED: (S.AUTHORISED, {"authorised": ORDER}),
    E.FLAG: (S.NEEDS_ATTENTION, {"attention_reason": "check"}),
    E.STATUS_SYNC: (S.CAPTURED, SYNCED),
}
EXPECTED: dict[tuple[PaymentState, EventType], tuple[PaymentState, dict[str, Any]]] = {
    **{
        (state, event): result
        for state in S
        if state.is_pending
        for event, result in PENDING.items()
    },
    (S.AUTHORISED, E.CAPTURE): (S.CAPTURED, {"captured": ORDER}),
    (S.AUTHORISED, E.VOID): (S.VOIDED, {}),
    (S.AUTHORISED, E.FLAG): (S.NEEDS_ATTENTION, {"attention_reason": "check"}),
    (S.AUTHORISED, E.STATUS_SYNC): (S.CAPTURED, SYNCED),
    (S.CAPTURED, E.VOID): (S.VOIDED, {}),
    (S.CAPTURED, E.REFUND): (S.PARTIALLY_REFUNDED, {"refunded": D(20)}),
    (S.CAPTURED, E.FLAG): (S.NEEDS_ATTENTION, {"attention_reason": "check"}),
    (S.CAPTURED, E.STATUS_SYNC): (S.CAPTURED, SYNCED),
    (S.PARTIALLY_REFUNDED, E.REFUND): (S.PARTIALLY_REFUNDED, {"refunded": D(50)}),
    (S.PARTIALLY_REFUNDED, E.FLAG): (S.NEEDS_ATTENTION, {"attention_reason": "check"}),
    (S.PARTIALLY_REFUNDED, E.STATUS_SYNC): (S.CAPTURED, SYNCED),
    (S.REFUNDED, E.STATUS_SYNC): (S.CAPTURED, SYNCED),
    (S.VOIDED, E.STATUS_SYNC): (S.CAPTURED, SYNCED),
    (S.NEEDS_ATTENTION, E.VOID): (S.VOIDED, {"attention_reason": ""}),
    (S.NEEDS_ATTENTION, E.FLAG): (
        S.NEEDS_ATTENTION,
        {"attention_reason": "amount mismatch; check"},
    ),
    (S.NEEDS_ATTENTION, E.STATUS_SYNC): (S.CAPTURED, {**SYNCED, "attention_reason": ""}),
}


@pytest.mark.parametrize(("state", "event_type"), list(itertools.product(S, E)))
def test_every_state_event_pair(state: PaymentState, event_type: EventType) -> None:
    status = START[state]
    before = copy.deepcopy(status)
    if (state, event_type) not in EXPECTED:
        with pytest.raises(TransitionError) as caught:
            apply(status, EVENT[event_type])
        assert (caught.value.state, caught.value.event) == (state.value, event_type.value)
        assert "not allowed" in caught.value.reason
        assert status == before
        assert event_type not in allowed_events(state)
        return
    new_state, changes = EXPECTED[state, event_type]
    if changes.get("declined_attempts") == "+1":
        changes = {"declined_attempts": status.declined_attempts + 1}
    result = apply(status, EVENT[event_type])
    assert result == replace(status, state=new_state, **changes)
    assert status == before
    assert event_type in allowed_events(state)


def test_table_is_exactly_the_expected_pairs() -> None:
    assert set(TRANSITIONS) == set(EXPECTED)
    assert isinstance(TRANSITIONS, MappingProxyType)
    for (state, event_type), target in TRANSITIONS.items():
        if isinstance(target, PaymentState):
            assert target == EXPECTED[state, event_type][0]
        else:
            assert target in (Rule.BY_AMOUNTS, Rule.BY_CMI)
    for state in S:
        assert allowed_events(state) == {e for s, e in TRANSITIONS if s is state}


def test_final_states_take_nothing_but_status_sync() -> None:
    for state in S:
        assert state.is_final == (allowed_events(state) == {E.STATUS_SYNC})
    assert {s for s in S if s.is_final} == {S.VOIDED, S.REFUNDED}


def test_state_properties() -> None:
    assert {s: s.cmi_state for s in S if s.cmi_state} == {
        S.AUTHORISED: "PRE",
        S.CAPTURED: "POST",
        S.PARTIALLY_REFUNDED: "RFND",
        S.REFUNDED: "RFND",
        S.VOIDED: "VOID",
    }
    assert {s for s in S if s.is_pending} == {S.CREATED, S.REDIRECTED, S.DECLINED}
    assert {s for s in S if s.is_paid} == {S.AUTHORISED, S.CAPTURED, S.PARTIALLY_REFUNDED}
    assert (str(S.CAPTURED), str(E.STATUS_SYNC)) == ("captured", "status_sync")
    assert isinstance(S.CAPTURED, str)


def test_capturable_and_refundable() -> None:
    assert {s: START[s].capturable for s in S if START[s].capturable} == {S.AUTHORISED: ORDER}
    assert {s: START[s].refundable for s in S if START[s].refundable} == {
        S.CAPTURED: ORDER,
        S.PARTIALLY_REFUNDED: D(70),
    }


def test_a_whole_payment() -> None:
    status = PaymentStatus.new(ORDER)
    for event in (
        Event.redirect(),
        Event.declined(),
        Event.declined(),
        Event.redirect(),
        Event.authorised(ORDER),
        Event.capture(),
        Event.refund(D("0.01")),
        Event.refund(D("99.99")),
    ):
        status = apply(status, event)
    assert status == PaymentStatus(
        S.REFUNDED, ORDER, ORDER, ORDER, ORDER, declined_attempts=2, attention_reason=""
    )


def test_late_decline_and_retried_success_are_refused() -> None:
    """The caller sees ``not is_pending`` and sends no event (docs/protocol.md#order-states)."""
    captured = START[S.CAPTURED]
    assert not captured.state.is_pending
    for event in (Event.declined(), Event.authorised(ORDER)):
        with pytest.raises(TransitionError):
            apply(captured, event)


# Amount rules ---------------------------------------------------------------------------


def test_partial_capture() -> None:
    result = apply(START[S.AUTHORISED], Event.capture(D("60.50")))
    assert (result.state, result.authorised, result.captured) == (S.CAPTURED, ORDER, D("60.50"))
    assert (result.capturable, result.refundable) == (D(0), D("60.50"))
    with pytest.raises(TransitionError):
        apply(result, Event.capture(D(1)))  # CMI's PostAuth happens once


@pytest.mark.parametrize("amount", [D("100.01"), D(0), D("-1"), D("NaN"), D("Infinity")])
def test_capture_refused(amount: Decimal) -> None:
    with pytest.raises(TransitionError):
        apply(START[S.AUTHORISED], Event.capture(amount))


def test_over_refund_by_one_cent() -> None:
    status = START[S.PARTIALLY_REFUNDED]  # 30 of 100 refunded
    with pytest.raises(TransitionError) as caught:
        apply(status, Event.refund(D("70.01")))
    assert "exceeds" in caught.value.reason
    assert apply(status, Event.refund(D("70.00"))).state is S.REFUNDED


def test_refund_of_a_partial_capture() -> None:
    status = apply(START[S.AUTHORISED], Event.capture(D(60)))
    with pytest.raises(TransitionError):
        apply(status, Event.refund(D("60.01")))
    assert apply(status, Event.refund(D(60))).state is S.REFUNDED


def test_refund_in_several_parts() -> None:
    status = START[S.CAPTURED]
    states = []
    for part in ("10", "20.50", "69.50"):
        status = apply(status, Event.refund(D(part)))
        states.append(status.state)
    assert states == [S.PARTIALLY_REFUNDED, S.PARTIALLY_REFUNDED, S.REFUNDED]
    assert (status.refunded, status.refundable) == (ORDER, D(0))
    with pytest.raises(TransitionError):
        apply(status, Event.refund(D("0.01")))


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (S.REDIRECTED, Event.authorised(100.0)),  # type: ignore[arg-type]
        (S.REDIRECTED, Event.authorised(100)),  # type: ignore[arg-type]
        (S.AUTHORISED, Event.capture(50.0)),  # type: ignore[arg-type]
        (S.CAPTURED, Event.refund(1.0)),  # type: ignore[arg-type]
        (S.NEEDS_ATTENTION, Event.status_sync("PRE", 100.0)),  # type: ignore[arg-type]
        (S.AUTHORISED, Event.status_sync("POST", ORDER, 100.0)),  # type: ignore[arg-type]
    ],
)
def test_float_and_int_amounts_refused(state: PaymentState, event: Event) -> None:
    with pytest.raises(TransitionError) as caught:
        apply(START[state], event)
    assert "decimal.Decimal" in caught.value.reason


def test_refund_needs_an_amount() -> None:
    with pytest.raises(TransitionError) as caught:
        apply(START[S.CAPTURED], Event(E.REFUND))
    assert "required" in caught.value.reason


def test_authorised_amount_must_be_the_order_amount() -> None:
    with pytest.raises(TransitionError) as caught:
        apply(START[S.REDIRECTED], Event.authorised(D("99.99")))
    assert "order amount" in caught.value.reason
    assert apply(START[S.REDIRECTED], Event.authorised(D("100"))).authorised == ORDER


def test_void_refused_once_something_was_refunded() -> None:
    flagged = apply(START[S.PARTIALLY_REFUNDED], Event.flag("status disagreement"))
    with pytest.raises(TransitionError):
        apply(flagged, Event.void())


def test_flag_needs_a_reason_and_keeps_every_reason_once() -> None:
    with pytest.raises(TransitionError):
        apply(START[S.CREATED], Event.flag("  "))
    status = apply(START[S.AUTHORISED], Event.flag("FAILURE reply"))
    status = apply(status, Event.flag("currency mismatch"))
    status = apply(status, Event.flag("FAILURE reply"))
    assert status.attention_reason == "FAILURE reply; currency mismatch"
    assert (status.authorised, status.capturable) == (ORDER, D(0))


def test_new_payment() -> None:
    assert PaymentStatus.new(ORDER) == PaymentStatus(S.CREATED, ORDER)
    for bad in (100.0, 100, D(0), D("-1"), D("NaN")):
        with pytest.raises(ValidationError):
            PaymentStatus.new(bad)  # type: ignore[arg-type]


# STATUS_SYNC ----------------------------------------------------------------------------


@pytest.mark.parametrize("state", list(S))
def test_sync_without_a_cmi_state_changes_nothing(state: PaymentState) -> None:
    assert apply(START[state], Event.status_sync(None, D(1), D(1), D(1))) == START[state]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (Event.status_sync("PRE", ORDER), (S.AUTHORISED, ORDER, D(0), D(0))),
        (Event.status_sync("PRE", D(80)), (S.AUTHORISED, D(80), D(0), D(0))),
        (Event.status_sync("POST", ORDER, D(60), D(0)), (S.CAPTURED, ORDER, D(60), D(0))),
        (  # amounts CMI does not give stay ours
            Event.status_sync("POST", ORDER, D(60)),
            (S.PARTIALLY_REFUNDED, ORDER, D(60), D(30)),
        ),
        (
            Event.status_sync("RFND", ORDER, ORDER, D(40)),
            (S.PARTIALLY_REFUNDED, ORDER, ORDER, D(40)),
        ),
        (
            Event.status_sync("POST", ORDER, ORDER, D(40)),
            (S.PARTIALLY_REFUNDED, ORDER, ORDER, D(40)),
        ),
        (Event.status_sync("RFND", ORDER, ORDER, ORDER), (S.REFUNDED, ORDER, ORDER, ORDER)),
        (Event.status_sync("VOID"), (S.VOIDED, ORDER, ORDER, D(30))),
    ],
)
def test_sync_takes_cmi_state_and_amounts(event: Event, expected: tuple[Any, ...]) -> None:
    flagged = replace(START[S.PARTIALLY_REFUNDED], state=S.NEEDS_ATTENTION, attention_reason="x")
    result = apply(flagged, event)
    assert (result.state, result.authorised, result.captured, result.refunded) == expected
    assert result.attention_reason == ""


def test_sync_is_the_fallback_when_the_callback_failed() -> None:
    result = apply(START[S.REDIRECTED], Event.status_sync("PRE", ORDER))
    assert (result.state, result.capturable) == (S.AUTHORISED, ORDER)


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (S.CREATED, Event.status_sync("PRE")),  # no authorised amount known
        (S.CREATED, Event.status_sync("POST")),  # nothing captured known
        (S.CAPTURED, Event.status_sync("RFND")),  # nothing refunded known
        (S.AUTHORISED, Event.status_sync("PRE", ORDER, D(1))),  # PRE with a capture
        (S.AUTHORISED, Event.status_sync("POST", ORDER, D("100.01"))),  # captured > authorised
        (S.CAPTURED, Event.status_sync("RFND", ORDER, ORDER, D(101))),  # refunded > captured
        (S.CAPTURED, Event.status_sync("POST", ORDER, ORDER, D(-1))),
        (S.CAPTURED, Event.status_sync("SETTLED")),
        (S.CAPTURED, Event.status_sync("post")),
    ],
)
def test_sync_refuses_contradictory_reports(state: PaymentState, event: Event) -> None:
    with pytest.raises(TransitionError) as caught:
        apply(START[state], event)
    assert caught.value.event == "status_sync"


# Properties -----------------------------------------------------------------------------

AMOUNTS = st.sampled_from(
    [D(0), D("-1"), D("0.01"), D(10), D("33.33"), D(60), ORDER, D("100.01"), D("NaN"), 1.5]
)
MAYBE = st.none() | AMOUNTS
EVENTS = st.one_of(
    st.sampled_from([Event.redirect(), Event.declined(), Event.void()]),
    st.builds(Event.authorised, st.sampled_from([ORDER, D(10)])),
    st.builds(Event.capture, MAYBE),
    st.builds(Event.refund, AMOUNTS),
    st.builds(Event.flag, st.sampled_from(["", "mismatch", "FAILURE reply"])),
    st.builds(
        Event.status_sync,
        st.sampled_from([None, "PRE", "POST", "RFND", "VOID", "BOGUS"]),
        MAYBE,
        MAYBE,
        MAYBE,
    ),
)


@given(st.lists(EVENTS, max_size=30))
def test_random_sequences_keep_the_invariants(events: list[Event]) -> None:
    status = PaymentStatus.new(ORDER)
    for event in events:
        before = copy.deepcopy(status)
        try:
            result = apply(status, event)
        except TransitionError:
            assert status == before
            continue
        assert status == before
        target = TRANSITIONS[status.state, event.type]
        if isinstance(target, PaymentState):
            assert result.state is target
        assert D(0) <= result.refunded <= result.captured <= result.authorised
        assert all(isinstance(a, Decimal) for a in (result.authorised, result.captured))
        assert bool(result.attention_reason) == (result.state is S.NEEDS_ATTENTION)
        assert result.declined_attempts >= status.declined_attempts
        assert result.amount == ORDER
        assert D(0) <= result.capturable <= result.authorised
        assert D(0) <= result.refundable <= result.captured
        status = result


@given(st.lists(st.integers(min_value=1, max_value=4000), min_size=1, max_size=8))
def test_refunds_in_parts_never_exceed_the_capture(cents: list[int]) -> None:
    status = apply(START[S.AUTHORISED], Event.capture(D("99.99")))
    total = D(0)
    for part in (D(c).scaleb(-2) for c in cents):
        if total + part > D("99.99"):
            with pytest.raises(TransitionError):
                apply(status, Event.refund(part))
            continue
        status = apply(status, Event.refund(part))
        total += part
        assert status.refunded == total
        assert status.state is (S.REFUNDED if total == D("99.99") else S.PARTIALLY_REFUNDED)
        if status.state is S.REFUNDED:
            break
