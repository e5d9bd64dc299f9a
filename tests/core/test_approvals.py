"""cmi_core.approvals: an approval the callback did not bring (okUrl, status report),
from every payment state."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from cmi_core.approvals import (
    LateApproval,
    Via,
    adopts_callback_trans_id,
    as_late_approval,
    is_approval,
    late_approval,
    trans_id_to_keep,
)
from cmi_core.callback import KnownPayment, Outcome, decide_callback, verify_callback
from cmi_core.states import Event, PaymentState, apply
from cmi_core.testing import make_callback

from .test_effects import STATUS

A = Decimal("100.00")
KEY = "store-key-for-tests"


def known(state: PaymentState, mode: str = "auto", trans_id: str = "") -> KnownPayment:
    return KnownPayment("o-1", A, "504", STATUS[state], mode, trans_id)  # type: ignore[arg-type]


def test_a_late_approval_is_decided_in_manual_mode() -> None:
    before = known(PaymentState.REDIRECTED, "auto")
    assert as_late_approval(before) == replace(before, capture_mode="manual")
    result = verify_callback(make_callback(KEY, oid="o-1", amount=A), KEY)
    assert (
        decide_callback(result, before, confirmed=True).body == "ACTION=POSTAUTH"
    )  # a callback would
    late = decide_callback(result, as_late_approval(before), confirmed=True)
    assert (late.outcome, late.body) == (Outcome.AUTHORISE, "APPROVED")  # CMI is not asked


#: payment state before a PRE report -> (mode after, capture after) for an auto payment
#: with an API user. Only a pending payment that becomes AUTHORISED is captured.
PRE_REPORT: dict[PaymentState, tuple[str, bool]] = {
    PaymentState.CREATED: ("manual", True),
    PaymentState.REDIRECTED: ("manual", True),
    PaymentState.DECLINED: ("manual", True),
    PaymentState.AUTHORISED: ("auto", False),
    PaymentState.CAPTURED: ("auto", False),
    PaymentState.PARTIALLY_REFUNDED: ("auto", False),
    PaymentState.REFUNDED: ("manual", False),  # paid again by CMI's word: no API capture
    PaymentState.VOIDED: ("manual", False),
    PaymentState.NEEDS_ATTENTION: ("manual", False),  # paid again, by CMI's word
}


@pytest.mark.parametrize("state", list(PaymentState))
@pytest.mark.parametrize("via", list(Via))
def test_after_a_pre_report_from_every_state(state: PaymentState, via: Via) -> None:
    before = STATUS[state]
    after = apply(before, Event.status_sync("PRE", A))
    plan = late_approval(before, after, capture_mode="auto", has_api_user=True, via=via)
    assert (plan.capture_mode, plan.capture_after) == PRE_REPORT[state]
    assert plan.record_trans_id is (via is Via.RETURN)


@pytest.mark.parametrize(
    ("mode", "api", "expected"),
    [
        ("auto", True, LateApproval("manual", True, True)),
        ("auto", False, LateApproval("manual", False, True)),  # no API user: staff capture
        ("manual", True, LateApproval("manual", False, True)),
        ("manual", False, LateApproval("manual", False, True)),
    ],
)
def test_okurl_approval_by_mode_and_api_user(mode: str, api: bool, expected: LateApproval) -> None:
    before = STATUS[PaymentState.REDIRECTED]
    after = apply(before, Event.authorised(A))
    plan = late_approval(before, after, capture_mode=mode, has_api_user=api, via=Via.RETURN)  # type: ignore[arg-type]
    assert plan == expected


def test_a_captured_report_is_not_captured_again() -> None:
    """POST from a pending state: CMI captured already; paid, manual, nothing sent."""
    before = STATUS[PaymentState.REDIRECTED]
    after = apply(before, Event.status_sync("POST", A, A))
    plan = late_approval(before, after, capture_mode="auto", has_api_user=True, via=Via.STATUS)
    assert plan == LateApproval("manual", False, False)


def test_a_flagged_approval_keeps_its_mode() -> None:
    """A mismatch flags instead of paying: not paid, so the mode is left as it was."""
    before = STATUS[PaymentState.REDIRECTED]
    after = apply(before, Event.flag("amount"))
    plan = late_approval(before, after, capture_mode="auto", has_api_user=True, via=Via.RETURN)
    assert plan == LateApproval("auto", False, True)


@pytest.mark.parametrize(
    ("outcome", "kept", "sent", "adopts"),
    [
        (Outcome.DUPLICATE, "", "T-1", True),  # learned from the status API: adopt it
        (Outcome.DUPLICATE, "T-1", "T-1", False),  # already recorded
        (Outcome.DUPLICATE, "", "", False),  # nothing to adopt
        (Outcome.CAPTURE, "", "T-1", False),  # a first approval records it anyway
        (Outcome.CONFLICT, "", "T-2", False),
    ],
)
def test_a_late_callback_adopts_its_trans_id(
    outcome: Outcome, kept: str, sent: str, adopts: bool
) -> None:
    result = verify_callback(make_callback(KEY, oid="o-1", amount=A, trans_id=sent), KEY)
    assert adopts_callback_trans_id(outcome, kept, result) is adopts


@pytest.mark.parametrize(
    ("outcome", "kept", "sent", "expected"),
    [
        (Outcome.CAPTURE, "", "T-1", "T-1"),
        (Outcome.AUTHORISE, "", "T-1", "T-1"),
        (Outcome.DUPLICATE, "", "T-1", "T-1"),  # adopted after a status-learned approval
        (Outcome.DUPLICATE, "T-1", "T-1", "T-1"),
        (Outcome.CONFLICT, "T-1", "T-2", "T-1"),  # a second approval changes nothing
        (Outcome.MISMATCH, "", "T-3", ""),  # flagged, not paid: not recorded
        (Outcome.DECLINED, "", "T-4", ""),
        (Outcome.LATE_DECLINE, "T-1", "T-5", "T-1"),
    ],
)
def test_the_trans_id_a_shop_keeps(outcome: Outcome, kept: str, sent: str, expected: str) -> None:
    result = verify_callback(make_callback(KEY, oid="o-1", amount=A, trans_id=sent), KEY)
    assert trans_id_to_keep(outcome, kept, result) == expected


#: state -> whether a PRE report from it is an approval (unpaid -> paid).
APPROVAL_FROM = {
    PaymentState.CREATED: True,
    PaymentState.REDIRECTED: True,
    PaymentState.DECLINED: True,
    PaymentState.AUTHORISED: False,
    PaymentState.CAPTURED: False,
    PaymentState.PARTIALLY_REFUNDED: False,
    PaymentState.REFUNDED: True,
    PaymentState.VOIDED: True,
    PaymentState.NEEDS_ATTENTION: True,
}


@pytest.mark.parametrize("state", list(PaymentState))
def test_which_status_reports_are_approvals(state: PaymentState) -> None:
    before = STATUS[state]
    assert is_approval(before, apply(before, Event.status_sync("PRE", A))) is APPROVAL_FROM[state]
    assert not is_approval(before, before)
