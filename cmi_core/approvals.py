"""Approvals the callback did not bring: the okUrl POST and CMI's status report.

CMI's callback (guide §4.2.1) is the one message that can ask CMI to capture
(``ACTION=POSTAUTH``). An approval the shop learns another way, from the shopper's
okUrl POST (§4.2.2) or from CMI's status API (§5, ORDERSTATUS), cannot: CMI holds the
money authorised and waits. The rules for such a "late" approval:

- :func:`as_late_approval`: it is decided as a callback in *manual* capture mode would be
  (amounts checked, a mismatch flagged), whatever the payment's mode;
- :func:`late_approval` (after the decision): the payment is in manual capture mode from
  the moment it is paid, so a late duplicate callback is answered ``APPROVED``, never
  ``ACTION=POSTAUTH`` (which would make CMI capture behind the shop's back); when it
  was in auto mode, came from a pending state, is now AUTHORISED and the shop has an API
  user, it is captured through the API (PostAuth, §5.2) after the commit; the okUrl's
  TransId is recorded, CMI's ORDERSTATUS TransId is not (it may differ from the
  callback's, which would make the late callback look like a second approval);
- :func:`adopts_callback_trans_id`: when the callback does come after an approval
  learned from the status API, its TransId is recorded then, and nothing else changes;
  :func:`trans_id_to_keep` is the whole TransId rule for a verified callback.

Pure: values in, values out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal

from cmi_core.callback import CallbackResult, KnownPayment, Outcome
from cmi_core.states import PaymentState, PaymentStatus

__all__ = [
    "LateApproval",
    "Via",
    "adopts_callback_trans_id",
    "as_late_approval",
    "is_approval",
    "late_approval",
    "trans_id_to_keep",
]


class Via(StrEnum):
    """How a late approval was learned."""

    RETURN = "return"  # the shopper's okUrl POST, verified (guide §4.2.2)
    STATUS = "status"  # CMI's ORDERSTATUS answer (guide §5)


@dataclass(frozen=True, slots=True)
class LateApproval:
    """What to do once a late approval was applied.

    ``capture_mode``: the payment's mode from now on; ``capture_after``: capture the whole
    authorisation through the API once the change is committed; ``record_trans_id``:
    store the message's TransId (okUrl) or leave it for the callback (status report).
    """

    capture_mode: Literal["auto", "manual"]
    capture_after: bool
    record_trans_id: bool


def is_approval(before: PaymentStatus, after: PaymentStatus) -> bool:
    """Whether a move makes an unpaid payment paid: what a status report must treat as an
    approval (through the late-approval rules), never as a plain status change."""
    return after.state.is_paid and not before.state.is_paid


def as_late_approval(known: KnownPayment) -> KnownPayment:
    """``known`` as the callback decision must see it for a late approval: manual mode."""
    return replace(known, capture_mode="manual")


def late_approval(
    before: PaymentStatus,
    after: PaymentStatus,
    *,
    capture_mode: Literal["auto", "manual"],
    has_api_user: bool,
    via: Via,
) -> LateApproval:
    """The rules above, for a payment that went from ``before`` to ``after``.

    ``capture_mode`` is the payment's mode before the approval; ``has_api_user`` whether
    the shop's config can call CMI's API.
    """
    paid_now = is_approval(before, after)
    return LateApproval(
        capture_mode="manual" if paid_now else capture_mode,
        capture_after=(
            capture_mode == "auto"
            and before.state.is_pending
            and after.state is PaymentState.AUTHORISED
            and has_api_user
        ),
        record_trans_id=via is Via.RETURN,
    )


def adopts_callback_trans_id(outcome: Outcome, known_trans_id: str, result: CallbackResult) -> bool:
    """A duplicate approval whose TransId the shop never recorded (it learned the approval
    from the status report): record the callback's TransId and approval fields now."""
    return outcome is Outcome.DUPLICATE and not known_trans_id and bool(result.trans_id)


def trans_id_to_keep(outcome: Outcome, known_trans_id: str, result: CallbackResult) -> str:
    """The TransId a shop keeps after a verified callback decided as ``outcome``.

    The callback's for a first approval (CAPTURE, AUTHORISE) and for the duplicate of an
    approval learned from the status API (:func:`adopts_callback_trans_id`); otherwise
    the one it had (a decline, a mismatch, a conflicting second approval change nothing).
    """
    if outcome in (Outcome.CAPTURE, Outcome.AUTHORISE) or adopts_callback_trans_id(
        outcome, known_trans_id, result
    ):
        return result.trans_id
    return known_trans_id
