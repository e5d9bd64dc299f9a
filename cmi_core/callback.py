"""What CMI sends back: verification, the typed result, and the merchant's decision.

Guide §4.2: after each attempt CMI posts the result server to server to ``CallbackURL``
(§4.2.1) and sends the shopper's browser to ``okUrl`` or ``failUrl`` with the same fields
(§4.2.2). Both carry every request field plus the result fields of §4.2.3, signed with
``HASH`` computed like the request's (§4.2.4).

:func:`verify_callback` checks the hash (an error, never a silent ``False``) and returns
a :class:`CallbackResult`. :func:`decide_callback` is the §4.2.1 decision as one pure
function: what to change and which body to answer CMI with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from cmi_core.binding import Binding, bind
from cmi_core.codes import ErrorCode, lookup
from cmi_core.errors import CallbackError, TransitionError, ValidationError
from cmi_core.hashing import ALL_READINGS, Reading, verify_hash
from cmi_core.money import get_currency, parse_amount
from cmi_core.states import Event, PaymentState, PaymentStatus, apply

__all__ = [
    "CallbackResult",
    "Decision",
    "KnownPayment",
    "Outcome",
    "Reply",
    "decide_callback",
    "verify_callback",
    "verify_return",
]

#: States in which a payment has not been paid yet: an approval is the first one.
_UNPAID = frozenset({PaymentState.CREATED, PaymentState.REDIRECTED, PaymentState.DECLINED})


@dataclass(frozen=True, slots=True)
class CallbackResult:
    """A verified callback or return POST, typed (guide §4.2.3).

    ``approved`` is true only for ``ProcReturnCode`` ``00`` (§4.2.1; a missing code is a
    failure). ``error`` is the §6.2 table entry for a failed attempt, when known.
    ``fields`` keeps every field as it verified: as received, or HTML-decoded when the
    hash matched only that way; ``reading`` names the reading of the hash rules that
    matched (:class:`~cmi_core.hashing.Reading`; "" when no hash was checked).
    ``binding`` says how firmly the result is bound to the request the shop signed
    (:mod:`cmi_core.binding`); ``binding_note`` why it is not strict.
    """

    oid: str
    approved: bool
    response: str
    proc_return_code: str
    amount: Decimal
    currency: str
    trans_id: str
    auth_code: str
    host_ref_num: str
    masked_pan: str
    card_brand: str
    md_status: str
    err_code: str
    err_msg: str
    transaction_date: str
    error: ErrorCode | None
    fields: Mapping[str, str] = field(repr=False)
    binding: Binding = Binding.NONE
    binding_note: str = ""
    reading: str = ""


def _get(fields: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = fields.get(name)
        if value is not None:
            return value.strip()
    return ""


def verify_callback(
    fields: Mapping[str, str],
    store_key: str,
    *,
    expected: Mapping[str, str] | None = None,
    readings: Iterable[Reading | str] = ALL_READINGS,
) -> CallbackResult:
    """Verify a callback's (or okUrl/failUrl POST's) ``HASH``, bind it, then parse it.

    The hash may match in any of ``readings`` (:func:`~cmi_core.hashing.verify_hash`);
    the values bound and parsed are the ones that verified.

    ``expected`` is the request the shop signed for this payment (the fields of
    :meth:`~cmi_core.request.PaymentRequest.as_dict`, kept since the payment was made):
    the result must carry it back (:func:`cmi_core.binding.bind`). Without it nothing is
    bound (``binding`` is ``NONE``) and :func:`decide_callback` accepts no approval that
    CMI's status API has not confirmed: the hash alone does not prove which payment a
    result is for (see :mod:`cmi_core.binding`).

    Raises :class:`~cmi_core.errors.SignatureError` when the hash is missing or wrong,
    :class:`~cmi_core.binding.BindingError` when the result does not carry its request
    back, and :class:`~cmi_core.errors.CallbackError` when a signed message lacks what any
    result must carry (``oid``, a readable ``amount`` and ``currency``).
    """
    verified = verify_hash(fields, store_key, readings)
    fields = verified.fields
    binding, note = bind(fields, expected) if expected is not None else (Binding.NONE, "")
    oid = _get(fields, "oid", "ReturnOid")
    if not oid:
        raise CallbackError("the callback has no oid")
    return_oid = _get(fields, "ReturnOid")
    if return_oid and return_oid != oid:
        raise CallbackError("the callback's ReturnOid differs from its oid")
    try:
        amount = parse_amount(_get(fields, "amount"))
        currency = get_currency(_get(fields, "currency")).numeric
    except ValidationError as exc:
        raise CallbackError(f"unreadable {exc.field} in the callback") from exc
    code = _get(fields, "ProcReturnCode")
    response = _get(fields, "Response")
    # §4.2.1 says "00"; the guide's own §4.2.5 example shows "0" with Response=Approved.
    # A code contradicted by Response (Declined, Error) is not an approval.
    approved = (code == "00" and response not in ("Declined", "Error")) or (
        code == "0" and response == "Approved"
    )
    err_code = _get(fields, "ErrCode")
    return CallbackResult(
        oid=oid,
        approved=approved,
        response=response,
        proc_return_code=code,
        amount=amount,
        currency=currency,
        trans_id=_get(fields, "TransId"),
        auth_code=_get(fields, "AuthCode"),
        host_ref_num=_get(fields, "HostRefNum"),
        masked_pan=_get(fields, "MaskedPan", "maskedCreditCard"),
        card_brand=_get(fields, "EXTRA.CARDBRAND"),
        md_status=_get(fields, "mdStatus"),
        err_code=err_code,
        err_msg=_get(fields, "ErrMsg"),
        transaction_date=_get(fields, "EXTRA.TRXDATE"),
        error=None if approved else lookup(code or None, err_code or None),
        fields=dict(fields),
        binding=binding,
        binding_note=note,
        reading=verified.reading.value,
    )


#: The okUrl/failUrl POSTs carry the same fields and hash as the callback (§4.2.2).
verify_return = verify_callback


class Reply(StrEnum):
    """The three bodies the merchant may answer a callback with (guide §4.2.1)."""

    POSTAUTH = "ACTION=POSTAUTH"
    APPROVED = "APPROVED"
    FAILURE = "FAILURE"


class Outcome(StrEnum):
    """Why the decision is what it is; adapters log it and may show it to staff."""

    CAPTURE = "capture"  # first approval, auto capture: paid, CMI asked to capture
    AUTHORISE = "authorise"  # first approval, manual capture: paid, staff will capture
    DECLINED = "declined"  # a failed attempt: nothing paid
    LATE_DECLINE = "late_decline"  # a failed attempt reported after the payment: ignored
    DUPLICATE = "duplicate"  # the same approval again: same reply, no change
    MISMATCH = "mismatch"  # amount or currency differ from the order: not paid, flagged
    CONFLICT = "conflict"  # another approval for a paid order: flagged
    UNKNOWN_ORDER = "unknown_order"  # no payment with this oid
    UNCONFIRMED = "unconfirmed"  # not bound strictly to its request, CMI did not confirm it
    INVALID = "invalid"  # hash or format wrong: nothing trusted
    ATTENTION = "attention"  # the payment already waits for staff


@dataclass(frozen=True, slots=True)
class KnownPayment:
    """What the merchant knows of the payment the callback names (its row, read locked).

    ``trans_id`` is CMI's ``TransId`` of the approval already recorded, if any; it tells
    a repeated approval (same id) from a conflicting one.
    """

    oid: str
    amount: Decimal
    currency: str
    status: PaymentStatus
    capture_mode: Literal["auto", "manual"]
    trans_id: str = ""

    def __post_init__(self) -> None:
        # "MAD" and "504" name one currency; callbacks carry the numeric code.
        object.__setattr__(self, "currency", get_currency(self.currency).numeric)


@dataclass(frozen=True, slots=True)
class Decision:
    """The §4.2.1 decision: the reply body, the events to apply, and the new status.

    ``status`` is the payment's status after ``events`` (None when there is no payment).
    ``needs_attention`` asks the adapter to flag the payment or alert staff.
    """

    reply: Reply
    outcome: Outcome
    events: tuple[Event, ...]
    status: PaymentStatus | None
    needs_attention: bool = False
    message: str = ""

    @property
    def body(self) -> str:
        """The exact plain-text body to answer CMI with."""
        return self.reply.value

    @property
    def changed(self) -> bool:
        return bool(self.events)


def _decision(
    reply: Reply,
    outcome: Outcome,
    payment: KnownPayment | None,
    events: tuple[Event, ...] = (),
    *,
    attention: bool = False,
    message: str = "",
) -> Decision:
    status = payment.status if payment is not None else None
    if status is not None:
        try:
            for event in events:
                status = apply(status, event)
        except TransitionError as exc:
            return Decision(
                Reply.FAILURE,
                Outcome.ATTENTION,
                (),
                payment.status if payment is not None else None,
                needs_attention=True,
                message=f"state machine refused the callback: {exc}",
            )
    return Decision(reply, outcome, events, status, attention, message)


def _first_reply(payment: KnownPayment) -> Reply:
    return Reply.POSTAUTH if payment.capture_mode == "auto" else Reply.APPROVED


def decide_callback(
    callback: CallbackResult | None, payment: KnownPayment | None, *, confirmed: bool = False
) -> Decision:
    """Decide what a callback changes and what to answer CMI (guide §4.2.1).

    - invalid callback (``None``: bad hash, format or binding) or unknown ``oid``:
      ``FAILURE``, nothing changes;
    - a callback not strictly bound to its request (``callback.binding`` not ``STRICT``,
      see :mod:`cmi_core.binding`): ``FAILURE``, nothing changes, unless ``confirmed``
      says that CMI's status API reports this payment approved for its amount (the
      caller asks it, outside any lock); a declined one is never confirmed;
    - amount or currency different from the order's (checked before the result, as
      §4.2.1 orders its checks): ``FAILURE``, nothing paid, the payment flagged while
      unpaid;
    - failed attempt (``ProcReturnCode`` not ``00``): ``APPROVED`` (acknowledged), the
      attempt is recorded, the payment stays unpaid; one arriving after the payment was
      made changes nothing;
    - first approval: paid; ``ACTION=POSTAUTH`` (capture now) in ``auto`` capture mode,
      ``APPROVED`` in ``manual`` mode;
    - the same approval again (same ``TransId``, or no ``TransId`` recorded to tell): the
      same reply as the first time (but ``APPROVED`` once voided), no second change;
    - another approval for a paid order, or a payment already waiting for staff:
      ``FAILURE`` and attention, nothing changes.
    """
    if callback is None:
        return _decision(Reply.FAILURE, Outcome.INVALID, payment, message="invalid callback")
    if payment is None or payment.oid != callback.oid:
        return _decision(Reply.FAILURE, Outcome.UNKNOWN_ORDER, None, message="unknown oid")
    if callback.binding is not Binding.STRICT and not (confirmed and callback.approved):
        reason = callback.binding_note or "no request to bind the result to"
        return _decision(
            Reply.FAILURE,
            Outcome.UNCONFIRMED,
            payment,
            message=f"result not bound strictly to its request ({reason}); not confirmed",
        )
    state = payment.status.state
    if callback.amount != payment.amount or callback.currency != payment.currency:
        reason = (
            f"CMI reported {callback.amount} ({callback.currency}) for an order of "
            f"{payment.amount} ({payment.currency})"
        )
        flag = (Event.flag(reason),) if state in _UNPAID else ()
        return _decision(
            Reply.FAILURE, Outcome.MISMATCH, payment, flag, attention=True, message=reason
        )
    if not callback.approved:
        if state in _UNPAID:
            events: tuple[Event, ...] = (Event.declined(),)
            return _decision(Reply.APPROVED, Outcome.DECLINED, payment, events)
        return _decision(Reply.APPROVED, Outcome.LATE_DECLINE, payment)
    if state is PaymentState.NEEDS_ATTENTION:
        return _decision(
            Reply.FAILURE, Outcome.ATTENTION, payment, attention=True, message="awaiting staff"
        )
    if state in _UNPAID:
        if payment.capture_mode == "auto":
            events = (Event.authorised(callback.amount), Event.capture(callback.amount))
            return _decision(Reply.POSTAUTH, Outcome.CAPTURE, payment, events)
        return _decision(
            Reply.APPROVED, Outcome.AUTHORISE, payment, (Event.authorised(callback.amount),)
        )
    if payment.trans_id and callback.trans_id != payment.trans_id:
        return _decision(
            Reply.FAILURE,
            Outcome.CONFLICT,
            payment,
            attention=True,
            message=f"a second approval ({callback.trans_id}) for a paid order",
        )
    reply = Reply.APPROVED if state is PaymentState.VOIDED else _first_reply(payment)
    return _decision(reply, Outcome.DUPLICATE, payment)
