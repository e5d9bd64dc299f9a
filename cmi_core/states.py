"""The payment state machine: every move a CMI payment can make, in one table.

A payment is a :class:`PaymentStatus`, a frozen value (a state plus its amounts).
Something happens to it, an :class:`Event` (the shopper is sent to CMI, CMI calls back,
the merchant captures, voids or refunds, staff are alerted, CMI's status API is read),
and :func:`apply` returns the next status, or raises
:class:`~cmi_core.errors.TransitionError` and changes nothing. No I/O: values in, values
out. Deciding which event a callback means (guide §4.2.1), talking to CMI and saving the
result are the caller's job.

The moves are the data table :data:`TRANSITIONS`, ``(state, event type) -> target``; a
pair missing from it is illegal. A target is a state, or a :class:`Rule` when the amounts
or CMI's answer choose it. Amount rules live in one place, :func:`apply`'s helpers, and a
last check holds for every result: ``0 <= refunded <= captured <= authorised``, plus what
the state implies (AUTHORISED: something authorised, nothing captured; CAPTURED and the
refund states: something captured).

CMI's order states (guide §5, docs/protocol.md#order-states) map to ours: PRE = AUTHORISED,
POST = CAPTURED, RFND = PARTIALLY_REFUNDED or REFUNDED (the amounts tell which), VOID =
VOIDED.
CREATED, REDIRECTED and DECLINED are "pending": no payment succeeded yet.

Decisions the protocol leaves to us:

- DECLINED -REDIRECT-> REDIRECTED: a shopper whose card was declined may come back to the
  checkout and post the form again. ``declined_attempts`` counts every declined callback
  of the payment and is never reset.
- Payment callbacks (CALLBACK_DECLINED, CALLBACK_AUTHORISED) are legal only in the pending
  states, CREATED included (the callback can beat the redirect bookkeeping). CMI sends
  callbacks for failed attempts before a success, and staff can retry a callback by hand
  (guide §4.2.1, §4.2.6; docs/protocol.md#flow), so a decline arriving late or a success
  arriving twice is normal; it is illegal here, and the caller recognises it
  (``not status.state.is_pending``), changes nothing and replies as before. The table stays
  honest: no silent self-loops.
- CALLBACK_AUTHORISED must carry the order amount (guide §4.2.1). On a mismatch the caller
  sends FLAG instead; :func:`apply` refuses the mismatched amount as a safety net.
- CAPTURE happens once, from AUTHORISED: ``None`` captures everything authorised, a
  smaller amount is a partial PostAuth (CMI releases the rest). Not from NEEDS_ATTENTION:
  staff first bring the payment back with STATUS_SYNC (to AUTHORISED, with CMI's amounts),
  so nothing is ever captured on amounts we do not trust.
- VOID from AUTHORISED, CAPTURED (CMI voids a same-day capture; the date rule is CMI's)
  and NEEDS_ATTENTION (release the hold of a suspect payment), only while nothing was
  refunded. A voided payment keeps its amounts as a record; ``capturable`` and
  ``refundable`` say what can still move, and are 0 there.
- REFUND from CAPTURED and PARTIALLY_REFUNDED; the target follows the amounts.
- FLAG from every state but the final ones (VOIDED, REFUNDED); the amounts are kept.
  Flagging NEEDS_ATTENTION again adds the new reason to the old ones. ``attention_reason``
  is non-empty exactly in NEEDS_ATTENTION: leaving it clears the reason.
- STATUS_SYNC is legal from every state (the one event final states take: CMI is the
  authority) and is the way out of NEEDS_ATTENTION. ``cmi_state=None`` (no record yet,
  pending) changes nothing at all. PRE -> AUTHORISED, VOID -> VOIDED, and POST or RFND ->
  CAPTURED, PARTIALLY_REFUNDED or REFUNDED by the amounts (we take it that CMI marks an
  order RFND after any credit, full or partial). Amounts CMI gives replace ours, those it
  does not give stay ours, except that PRE resets captured and refunded to 0. A report
  that breaks the amount rules is refused (PRE with no authorised amount known, RFND
  with nothing refunded, captured above authorised...).
- Amounts are :class:`~decimal.Decimal`, finite and never negative; an event's own amount
  must be greater than 0; floats and ints are refused. Fields an event type does not use
  are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import Enum, StrEnum
from types import MappingProxyType

from cmi_core.errors import TransitionError, ValidationError

__all__ = [
    "TRANSITIONS",
    "Event",
    "EventType",
    "PaymentState",
    "PaymentStatus",
    "Rule",
    "allowed_events",
    "apply",
]

_ZERO = Decimal(0)


class PaymentState(StrEnum):
    """Where a payment stands; see the module docstring for the moves between states."""

    CREATED = "created"  # payment record made, form not yet sent
    REDIRECTED = "redirected"  # shopper sent to CMI's page
    DECLINED = "declined"  # last attempt declined; a later approval is still possible
    AUTHORISED = "authorised"  # CMI: PRE (pre-authorised, funds held)
    CAPTURED = "captured"  # CMI: POST (whole or partial capture)
    PARTIALLY_REFUNDED = "partially_refunded"  # CMI: RFND with something left
    REFUNDED = "refunded"  # CMI: RFND, everything captured refunded
    VOIDED = "voided"  # CMI: VOID
    NEEDS_ATTENTION = "needs_attention"  # mismatch, FAILURE reply...: staff must look

    @property
    def cmi_state(self) -> str | None:
        """CMI's order state for this one (guide §5): PRE, POST, RFND, VOID, or None."""
        return _CMI_STATES.get(self)

    @property
    def is_pending(self) -> bool:
        """No payment succeeded yet: the only states payment callbacks apply to."""
        return self in (PaymentState.CREATED, PaymentState.REDIRECTED, PaymentState.DECLINED)

    @property
    def is_paid(self) -> bool:
        """The shopper's money is held or taken, and not all given back."""
        return self in (
            PaymentState.AUTHORISED,
            PaymentState.CAPTURED,
            PaymentState.PARTIALLY_REFUNDED,
        )

    @property
    def is_final(self) -> bool:
        """Nothing more can happen but a STATUS_SYNC from CMI."""
        return self in (PaymentState.VOIDED, PaymentState.REFUNDED)


_CMI_STATES = {
    PaymentState.AUTHORISED: "PRE",
    PaymentState.CAPTURED: "POST",
    PaymentState.PARTIALLY_REFUNDED: "RFND",
    PaymentState.REFUNDED: "RFND",
    PaymentState.VOIDED: "VOID",
}
_CMI_STATE_NAMES = frozenset(_CMI_STATES.values())


class EventType(StrEnum):
    REDIRECT = "redirect"  # the shop sent the shopper's browser to CMI
    CALLBACK_DECLINED = "callback_declined"  # a callback with ProcReturnCode != 00
    CALLBACK_AUTHORISED = "callback_authorised"  # a callback with ProcReturnCode 00
    CAPTURE = "capture"  # PostAuth accepted by CMI (callback ACTION=POSTAUTH or API)
    VOID = "void"  # Void accepted by CMI
    REFUND = "refund"  # Credit accepted by CMI
    FLAG = "flag"  # something is wrong: staff must look
    STATUS_SYNC = "status_sync"  # what CMI's ORDERSTATUS query reports


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to a payment; build it with the class methods.

    ``amount`` is the authorised amount (CALLBACK_AUTHORISED, STATUS_SYNC), the captured
    amount (CAPTURE; None captures everything authorised) or the refunded amount (REFUND).
    ``cmi_state``, ``captured`` and ``refunded`` are what CMI reports (STATUS_SYNC).
    """

    type: EventType
    amount: Decimal | None = None
    reason: str = ""
    cmi_state: str | None = None
    captured: Decimal | None = None
    refunded: Decimal | None = None

    @classmethod
    def redirect(cls) -> Event:
        return cls(EventType.REDIRECT)

    @classmethod
    def declined(cls) -> Event:
        return cls(EventType.CALLBACK_DECLINED)

    @classmethod
    def authorised(cls, amount: Decimal) -> Event:
        return cls(EventType.CALLBACK_AUTHORISED, amount=amount)

    @classmethod
    def capture(cls, amount: Decimal | None = None) -> Event:
        return cls(EventType.CAPTURE, amount=amount)

    @classmethod
    def void(cls) -> Event:
        return cls(EventType.VOID)

    @classmethod
    def refund(cls, amount: Decimal) -> Event:
        return cls(EventType.REFUND, amount=amount)

    @classmethod
    def flag(cls, reason: str) -> Event:
        return cls(EventType.FLAG, reason=reason)

    @classmethod
    def status_sync(
        cls,
        cmi_state: str | None,
        authorised: Decimal | None = None,
        captured: Decimal | None = None,
        refunded: Decimal | None = None,
    ) -> Event:
        return cls(
            EventType.STATUS_SYNC,
            amount=authorised,
            cmi_state=cmi_state,
            captured=captured,
            refunded=refunded,
        )


@dataclass(frozen=True, slots=True)
class PaymentStatus:
    """A payment's state and amounts; ``amount`` is the order amount expected."""

    state: PaymentState
    amount: Decimal
    authorised: Decimal = _ZERO
    captured: Decimal = _ZERO
    refunded: Decimal = _ZERO
    declined_attempts: int = 0
    attention_reason: str = ""

    @classmethod
    def new(cls, amount: Decimal) -> PaymentStatus:
        """A CREATED payment for an order of ``amount``."""
        if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
            raise ValidationError("amount", "must be a decimal.Decimal greater than zero")
        return cls(PaymentState.CREATED, amount)

    @property
    def refundable(self) -> Decimal:
        """What a REFUND may still give back (0 where refunds are not allowed)."""
        if self.state in (PaymentState.CAPTURED, PaymentState.PARTIALLY_REFUNDED):
            return self.captured - self.refunded
        return _ZERO

    @property
    def capturable(self) -> Decimal:
        """What a CAPTURE may take (0 unless AUTHORISED)."""
        return self.authorised if self.state is PaymentState.AUTHORISED else _ZERO


class Rule(Enum):
    """A target chosen when the event is applied rather than written in the table."""

    BY_AMOUNTS = "captured, partially_refunded or refunded, by captured and refunded"
    BY_CMI = "the state CMI reports (unchanged when it reports none)"


_S = PaymentState
_E = EventType
_PENDING_ROW: dict[EventType, PaymentState | Rule] = {
    _E.REDIRECT: _S.REDIRECTED,
    _E.CALLBACK_DECLINED: _S.DECLINED,
    _E.CALLBACK_AUTHORISED: _S.AUTHORISED,
    _E.FLAG: _S.NEEDS_ATTENTION,
    _E.STATUS_SYNC: Rule.BY_CMI,
}
_TABLE: dict[PaymentState, dict[EventType, PaymentState | Rule]] = {
    _S.CREATED: _PENDING_ROW,
    _S.REDIRECTED: _PENDING_ROW,
    _S.DECLINED: _PENDING_ROW,
    _S.AUTHORISED: {
        _E.CAPTURE: _S.CAPTURED,
        _E.VOID: _S.VOIDED,
        _E.FLAG: _S.NEEDS_ATTENTION,
        _E.STATUS_SYNC: Rule.BY_CMI,
    },
    _S.CAPTURED: {
        _E.VOID: _S.VOIDED,
        _E.REFUND: Rule.BY_AMOUNTS,
        _E.FLAG: _S.NEEDS_ATTENTION,
        _E.STATUS_SYNC: Rule.BY_CMI,
    },
    _S.PARTIALLY_REFUNDED: {
        _E.REFUND: Rule.BY_AMOUNTS,
        _E.FLAG: _S.NEEDS_ATTENTION,
        _E.STATUS_SYNC: Rule.BY_CMI,
    },
    _S.REFUNDED: {_E.STATUS_SYNC: Rule.BY_CMI},
    _S.VOIDED: {_E.STATUS_SYNC: Rule.BY_CMI},
    _S.NEEDS_ATTENTION: {
        _E.VOID: _S.VOIDED,
        _E.FLAG: _S.NEEDS_ATTENTION,
        _E.STATUS_SYNC: Rule.BY_CMI,
    },
}

#: Every legal move: ``(state, event type) -> target``. A pair not listed is illegal.
TRANSITIONS: Mapping[tuple[PaymentState, EventType], PaymentState | Rule] = MappingProxyType(
    {(state, event): target for state, row in _TABLE.items() for event, target in row.items()}
)
_ALLOWED = {state: frozenset(row) for state, row in _TABLE.items()}


def allowed_events(state: PaymentState) -> frozenset[EventType]:
    """The event types :func:`apply` accepts in ``state``."""
    return _ALLOWED[state]


def apply(status: PaymentStatus, event: Event) -> PaymentStatus:
    """Return the status after ``event``; ``status`` itself is never changed.

    Raises :class:`TransitionError` when the table has no move for the pair, or when an
    amount breaks a rule (wrong type, not positive, more than can be captured or refunded,
    or a CMI report that contradicts itself).
    """
    target = TRANSITIONS.get((status.state, event.type))
    try:
        if target is None:
            allowed = ", ".join(sorted(e.value for e in allowed_events(status.state)))
            raise _RefusedError(f"not allowed in this state (allowed: {allowed})")
        after = _move_amounts(status, event)
        state = _resolve(target, after, event)
        _check_amounts(state, after)
    except _RefusedError as refusal:
        raise TransitionError(status.state.value, event.type.value, str(refusal)) from None
    reason = after.attention_reason if state is PaymentState.NEEDS_ATTENTION else ""
    return replace(after, state=state, attention_reason=reason)


class _RefusedError(Exception):
    """Why :func:`apply` refuses; turned into a TransitionError in one place."""


def _move_amounts(s: PaymentStatus, e: Event) -> PaymentStatus:
    """The event's effect on amounts, counters and reason (the state comes after)."""
    match e.type:
        case EventType.CALLBACK_DECLINED:
            return replace(s, declined_attempts=s.declined_attempts + 1)
        case EventType.CALLBACK_AUTHORISED:
            amount = _positive(e.amount, "authorised amount")
            if amount != s.amount:
                raise _RefusedError(
                    f"authorised amount {amount} is not the order amount {s.amount}; "
                    "flag the payment instead"
                )
            return replace(s, authorised=amount)
        case EventType.CAPTURE:
            amount = s.authorised if e.amount is None else _positive(e.amount, "capture amount")
            if amount > s.authorised:
                raise _RefusedError(f"capture of {amount} exceeds the {s.authorised} authorised")
            return replace(s, captured=amount)
        case EventType.VOID:
            if s.refunded:
                raise _RefusedError("a payment partly refunded cannot be voided")
            return s
        case EventType.REFUND:
            amount = _positive(e.amount, "refund amount")
            left = s.captured - s.refunded
            if amount > left:
                raise _RefusedError(f"refund of {amount} exceeds the {left} left to refund")
            return replace(s, refunded=s.refunded + amount)
        case EventType.FLAG:
            reason = e.reason.strip()
            if not reason:
                raise _RefusedError("a flag needs a reason")
            reasons = s.attention_reason.split("; ") if s.attention_reason else []
            if reason not in reasons:
                reasons.append(reason)
            return replace(s, attention_reason="; ".join(reasons))
        case EventType.STATUS_SYNC:
            if e.cmi_state is None:
                return s
            if e.cmi_state not in _CMI_STATE_NAMES:
                raise _RefusedError(f"unknown CMI order state {e.cmi_state!r}")
            pre = e.cmi_state == "PRE"
            return replace(
                s,
                authorised=_reported(e.amount, s.authorised, "authorised"),
                captured=_reported(e.captured, _ZERO if pre else s.captured, "captured"),
                refunded=_reported(e.refunded, _ZERO if pre else s.refunded, "refunded"),
            )
        case _:  # REDIRECT: nothing to count
            return s


def _resolve(target: PaymentState | Rule, after: PaymentStatus, e: Event) -> PaymentState:
    if isinstance(target, PaymentState):
        return target
    if target is Rule.BY_CMI:
        match e.cmi_state:
            case None:
                return after.state
            case "PRE":
                return PaymentState.AUTHORISED
            case "VOID":
                return PaymentState.VOIDED
            case "RFND" if not after.refunded:
                raise _RefusedError("CMI reports RFND but no refunded amount is known")
    # Rule.BY_AMOUNTS, and CMI's POST or RFND: the amounts tell which.
    if not after.refunded:
        return PaymentState.CAPTURED
    if after.refunded < after.captured:
        return PaymentState.PARTIALLY_REFUNDED
    return PaymentState.REFUNDED


def _check_amounts(state: PaymentState, s: PaymentStatus) -> None:
    """The rules every result obeys, whatever the event."""
    if not _ZERO <= s.refunded <= s.captured <= s.authorised:
        raise _RefusedError(
            f"amounts must satisfy 0 <= refunded ({s.refunded}) <= captured ({s.captured})"
            f" <= authorised ({s.authorised})"
        )
    if state is PaymentState.AUTHORISED and (not s.authorised or s.captured):
        raise _RefusedError("an authorised payment has an authorised amount and nothing captured")
    if state.cmi_state in ("POST", "RFND") and not s.captured:
        raise _RefusedError("a captured or refunded payment has a captured amount")


def _positive(value: object, what: str) -> Decimal:
    amount = _decimal(value, what)
    if amount <= 0:
        raise _RefusedError(f"{what} must be greater than zero")
    return amount


def _reported(value: Decimal | None, ours: Decimal, what: str) -> Decimal:
    if value is None:
        return ours
    amount = _decimal(value, what)
    if amount < 0:
        raise _RefusedError(f"{what} must not be negative")
    return amount


def _decimal(value: object, what: str) -> Decimal:
    if value is None:
        raise _RefusedError(f"{what} is required")
    if not isinstance(value, Decimal) or not value.is_finite():
        raise _RefusedError(f"{what} must be a finite decimal.Decimal, never a float")
    return value
