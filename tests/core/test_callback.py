"""Callback verification (guide §4.2.3-4.2.4) and the merchant's decision (§4.2.1)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Literal

import pytest

from cmi_core.callback import (
    KnownPayment,
    Outcome,
    Reply,
    decide_callback,
    verify_callback,
    verify_return,
)
from cmi_core.config import CMIConfig
from cmi_core.errors import CallbackError, SignatureError
from cmi_core.request import PaymentOrder, build_payment_request
from cmi_core.states import Event, PaymentState, PaymentStatus, apply
from cmi_core.testing import make_callback, sign, tamper

KEY = "TEST-STORE-KEY"
AMOUNT = Decimal("27.47")
REQUEST = build_payment_request(
    CMIConfig(client_id="600000000", store_key=KEY),
    PaymentOrder(
        oid="sfgzzy4",
        amount=AMOUNT,
        email="shopper@example.ma",
        billing_name="Bill John Doe",
        ok_url="https://shop.example/ok",
        fail_url="https://shop.example/fail",
        callback_url="https://shop.example/callback",
    ),
    rnd="lbJfQCTTrNRfMcNe111x",
).as_dict()


def callback(**kwargs: object) -> dict[str, str]:
    """A signed callback echoing REQUEST, as CMI sends it."""
    params: dict[str, object] = {
        "oid": "sfgzzy4",
        "amount": AMOUNT,
        "request_fields": REQUEST,
        **kwargs,
    }
    return make_callback(KEY, **params)  # type: ignore[arg-type]


def own_request(fields: dict[str, str]) -> dict[str, str]:
    """The request a callback carries back (an oid or amount changed in the callback is
    taken as its own request's: these tests are about the decision, not the binding)."""
    return {name: fields[name] for name in REQUEST if name in fields}


def payment(
    state: PaymentState = PaymentState.REDIRECTED,
    mode: Literal["auto", "manual"] = "auto",
    trans_id: str = "",
) -> KnownPayment:
    status = replace(PaymentStatus.new(AMOUNT), state=state)
    if state not in (PaymentState.CREATED, PaymentState.REDIRECTED, PaymentState.DECLINED):
        status = replace(status, authorised=AMOUNT)
    if state in (PaymentState.CAPTURED, PaymentState.REFUNDED):
        status = replace(status, captured=AMOUNT)
    if state is PaymentState.REFUNDED:
        status = replace(status, refunded=AMOUNT)
    return KnownPayment(
        oid="sfgzzy4",
        amount=AMOUNT,
        currency="504",
        status=status,
        capture_mode=mode,
        trans_id=trans_id,
    )


# Guide §4.2.5 "Cas de transaction réussie", as CMI posts it (HASH recomputed with KEY).
GUIDE_SUCCESS = {
    "ACQBIN": "439218", "acqStan": "56928", "amount": "27.47", "AuthCode": "746579",
    "BillToCity": "Casablanca", "BillToCompany": "Billing Company", "BillToCountry": "504",
    "BillToName": "Bill John Doe", "callbackUrl": "http://test.cmi.co.ma/callback",
    "clientid": "6000000004", "currency": "504", "EXTRA.CARDBRAND": "VISA",
    "EXTRA.CARDISSUER": "CDM", "EXTRA.TRXDATE": "23/11/02017 15:57:06", "failUrl":
    "http://test.cmi.co.ma/fail", "HostRefNum": "732715056928", "id1": "id1", "id2": "id2",
    "itemnumber1": "a1", "lang": "en", "MaskedPan": "400000***7190", "mdStatus": "1",
    "oid": "sfgzzy4", "okUrl": "http://test.cmi.co.ma/ok", "price1": "2.00", "price2": "3.95",
    "ProcReturnCode": "00", "Response": "Approved", "ReturnOid": "sfgzzy4",
    "rnd": "lbJfQCTTrNRfMcNe111", "storetype": "3D PAY HOSTING", "TransId": "17327P7GH13718",
    "trantype": "PreAuth", "txstatus": "Y", "xid": "7AFKUXDa5KeelWxM6wxfB9YfLDY=",
    "ErrMsg": "", "hashAlgorithm": "ver3", "encoding": "utf-8",
}  # fmt: skip


def test_verify_the_guides_success_example() -> None:
    result = verify_callback(sign(GUIDE_SUCCESS, KEY), KEY)
    assert result.approved
    assert result.oid == "sfgzzy4"
    assert result.amount == Decimal("27.47")
    assert result.currency == "504"
    assert result.trans_id == "17327P7GH13718"
    assert result.auth_code == "746579"
    assert result.host_ref_num == "732715056928"
    assert result.masked_pan == "400000***7190"
    assert result.card_brand == "VISA"
    assert result.md_status == "1"
    assert result.error is None
    assert result.fields["EXTRA.CARDISSUER"] == "CDM"


def test_the_guides_failure_example_maps_to_the_error_table() -> None:
    failed = {
        "oid": "12345", "amount": "1.00", "currency": "504", "ProcReturnCode": "99",
        "ErrCode": "CORE-5110", "ErrMsg": "Multiple values exist for the single paramater.",
        "mdStatus": "7", "MaskedPan": "400000***7190",
    }  # fmt: skip
    result = verify_callback(sign(failed, KEY), KEY)
    assert not result.approved
    assert result.error is not None
    assert result.error.system_code == "CORE-5110"
    assert result.err_msg.startswith("Multiple values")


@pytest.mark.parametrize("code", ["", "05", "51", "99", "000", "0 0"])
def test_only_00_is_an_approval(code: str) -> None:
    fields = callback(proc_return_code="05")
    fields = sign({**fields, "ProcReturnCode": code}, KEY)
    assert not verify_callback(fields, KEY).approved


def test_guide_example_zero_with_approved_response_is_an_approval() -> None:
    fields = sign({**callback(), "ProcReturnCode": "0", "Response": "Approved"}, KEY)
    assert verify_callback(fields, KEY).approved


def test_missing_hash_is_an_error_not_false() -> None:
    fields = callback()
    del fields["HASH"]
    with pytest.raises(SignatureError):
        verify_callback(fields, KEY)


@pytest.mark.parametrize(
    "change", [{"amount": "1.00"}, {"ProcReturnCode": "00"}, {"oid": "other"}, {"x": "1"}]
)
def test_forged_callbacks_are_refused(change: dict[str, str]) -> None:
    fields = tamper(callback(proc_return_code="05"), **change)
    with pytest.raises(SignatureError):
        verify_callback(fields, KEY)


def test_signed_but_malformed_callbacks_are_callback_errors() -> None:
    with pytest.raises(CallbackError, match="amount"):
        verify_callback(sign({**callback(), "amount": "lots"}, KEY), KEY)
    fields = callback()
    del fields["oid"], fields["ReturnOid"]
    with pytest.raises(CallbackError, match="oid"):
        verify_callback(sign(fields, KEY), KEY)


def test_return_posts_verify_the_same_way() -> None:
    assert verify_return(callback(), KEY).approved
    with pytest.raises(SignatureError):
        verify_return(tamper(callback(), amount="0.01"), KEY)


# The decision, guide §4.2.1.


def decide(fields: dict[str, str], known: KnownPayment | None):  # type: ignore[no-untyped-def]
    return decide_callback(verify_callback(fields, KEY, expected=own_request(fields)), known)


def test_approved_auto_capture_replies_postauth_and_captures() -> None:
    decision = decide(callback(), payment())
    assert decision.body == "ACTION=POSTAUTH"
    assert decision.outcome is Outcome.CAPTURE
    assert decision.status is not None
    assert decision.status.state is PaymentState.CAPTURED
    assert decision.status.captured == AMOUNT


def test_approved_manual_capture_replies_approved_and_authorises() -> None:
    decision = decide(callback(), payment(mode="manual"))
    assert decision.body == "APPROVED"
    assert decision.outcome is Outcome.AUTHORISE
    assert decision.status is not None
    assert decision.status.state is PaymentState.AUTHORISED
    assert decision.status.captured == 0


def test_approval_after_declines_is_accepted() -> None:
    decision = decide(callback(), payment(PaymentState.DECLINED))
    assert decision.reply is Reply.POSTAUTH


@pytest.mark.parametrize("state", [PaymentState.CREATED, PaymentState.REDIRECTED])
def test_declined_acknowledges_and_records_the_attempt(state: PaymentState) -> None:
    decision = decide(callback(approved=False, proc_return_code="51"), payment(state))
    assert decision.body == "APPROVED"
    assert decision.outcome is Outcome.DECLINED
    assert decision.status is not None
    assert decision.status.state is PaymentState.DECLINED
    assert decision.status.declined_attempts == 1
    assert decision.status.captured == decision.status.authorised == 0


def test_old_decline_after_success_changes_nothing() -> None:
    known = payment(PaymentState.CAPTURED, trans_id="25327ABCD1234")
    decision = decide(callback(approved=False, trans_id="OLDER"), known)
    assert decision.body == "APPROVED"
    assert decision.outcome is Outcome.LATE_DECLINE
    assert decision.events == ()
    assert decision.status == known.status


@pytest.mark.parametrize(
    "change", [{"amount": Decimal("2.00")}, {"amount": Decimal("27.48")}, {"currency": "978"}]
)
def test_mismatch_replies_failure_and_flags(change: dict[str, object]) -> None:
    decision = decide(callback(**change), payment())
    assert decision.body == "FAILURE"
    assert decision.outcome is Outcome.MISMATCH
    assert decision.needs_attention
    assert decision.status is not None
    assert decision.status.state is PaymentState.NEEDS_ATTENTION
    assert decision.status.captured == decision.status.authorised == 0


def test_unknown_oid_and_invalid_callbacks_reply_failure() -> None:
    unknown = decide(callback(), None)
    assert (unknown.body, unknown.outcome, unknown.events) == ("FAILURE", Outcome.UNKNOWN_ORDER, ())
    other = decide(callback(oid="another"), payment())
    assert other.outcome is Outcome.UNKNOWN_ORDER
    invalid = decide_callback(None, payment())
    assert (invalid.body, invalid.outcome, invalid.events) == ("FAILURE", Outcome.INVALID, ())
    assert invalid.status == payment().status


@pytest.mark.parametrize(
    ("mode", "state", "reply"),
    [
        ("auto", PaymentState.CAPTURED, "ACTION=POSTAUTH"),
        ("manual", PaymentState.AUTHORISED, "APPROVED"),
        ("manual", PaymentState.CAPTURED, "APPROVED"),
        ("auto", PaymentState.REFUNDED, "ACTION=POSTAUTH"),
        ("auto", PaymentState.VOIDED, "APPROVED"),
    ],
)
def test_duplicate_approval_same_reply_no_change(
    mode: Literal["auto", "manual"], state: PaymentState, reply: str
) -> None:
    known = payment(state, mode, trans_id="25327ABCD1234")
    decision = decide(callback(), known)
    assert decision.body == reply
    assert decision.outcome is Outcome.DUPLICATE
    assert decision.events == ()
    assert decision.status == known.status


def test_first_and_repeated_approval_get_identical_replies() -> None:
    fields = callback()
    first = decide(fields, payment())
    assert first.status is not None
    after = replace(payment(), status=first.status, trans_id="25327ABCD1234")
    again = decide(fields, after)
    assert again.body == first.body
    assert not again.changed


def test_second_approval_with_another_trans_id_is_a_conflict() -> None:
    known = payment(PaymentState.CAPTURED, trans_id="FIRST")
    decision = decide(callback(trans_id="SECOND"), known)
    assert decision.body == "FAILURE"
    assert decision.outcome is Outcome.CONFLICT
    assert decision.needs_attention
    assert decision.events == ()


def test_payment_waiting_for_staff_is_left_alone() -> None:
    flagged = apply(payment().status, Event.flag("checked by hand"))
    known = replace(payment(), status=flagged)
    decision = decide(callback(), known)
    assert decision.body == "FAILURE"
    assert decision.status == flagged


# Review findings.


def test_declined_callback_with_another_amount_is_a_mismatch() -> None:
    decision = decide(callback(approved=False, amount=Decimal("1.00")), payment())
    assert decision.body == "FAILURE"
    assert decision.outcome is Outcome.MISMATCH
    assert decision.needs_attention


def test_known_payment_currency_in_letters_is_the_same_currency() -> None:
    known = replace(payment(), currency="MAD")
    assert known.currency == "504"
    assert decide(callback(), known).outcome is Outcome.CAPTURE


def test_00_contradicted_by_response_is_not_an_approval() -> None:
    fields = sign({**callback(), "Response": "Declined"}, KEY)
    assert not verify_callback(fields, KEY).approved


def test_return_oid_must_match_oid() -> None:
    with pytest.raises(CallbackError, match="ReturnOid"):
        verify_callback(sign({**callback(), "ReturnOid": "other"}, KEY), KEY)
