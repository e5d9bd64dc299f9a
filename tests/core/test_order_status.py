"""cmi_core.order_status: CMI's ORDERSTATUS/ORDERHISTORY answer -> the state machine's
event, for every order state, and applied from every payment state."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cmi_core.api import APIResult, HistoryTransaction, OrderHistory, OrderState, OrderStatus
from cmi_core.effects import EffectKind, effects
from cmi_core.errors import TransitionError
from cmi_core.money import get_currency
from cmi_core.order_status import approval_result, refund_amounts, status_event
from cmi_core.states import Event, PaymentState, apply

from .test_effects import STATUS

MAD = get_currency("504")
A = Decimal("100.00")


def _result(**kw: Any) -> APIResult:
    values: dict[str, Any] = {
        "operation": "ORDERSTATUS",
        "order_id": "o-1",
        "group_id": "o-1",
        "response": "Approved",
        "approved": True,
        "auth_code": "P-1",
        "host_ref_num": "H-1",
        "proc_return_code": "00",
        "trans_id": "T-STATUS",
        "err_msg": "",
        "error_code": "",
        "settle_id": "",
        "trx_date": None,
        "extra": {"TRANS_STAT": "A"},
    }
    return APIResult(**{**values, **kw})


def order(state: OrderState, captured: Decimal | None = None) -> OrderStatus:
    return OrderStatus(
        order_id="o-1",
        state=state,
        trans_stat="A",
        charge_type="S",
        currency=MAD,
        amount=A,
        captured_amount=captured,
        auth_code="P-1",
        host_ref_num="H-1",
        trans_id="T-STATUS",
        proc_return_code="00",
        masked_pan="400000***7190",
        md_status="1",
        auth_time=None,
        capture_time=None,
        void_time=None,
        result=_result(),
    )


def line(charge_type: str, amount: str, code: str = "00") -> HistoryTransaction:
    return HistoryTransaction(
        charge_type=charge_type,
        trans_stat="C",
        state=OrderState.RFND if charge_type == "C" else OrderState.POST,
        amount=Decimal(amount),
        captured_amount=None,
        auth_time=None,
        capture_time=None,
        void_time=None,
        host_ref_num="",
        auth_code="",
        proc_return_code=code,
        trans_id="",
        raw="",
    )


HISTORY = OrderHistory(
    order_id="o-1",
    currency=MAD,
    transactions=(
        line("S", "100.00"),
        line("C", "30.00"),
        line("C", "5.00", code="99"),  # a refused credit: no refund
        line(" c ", "10.00"),
    ),
    result=_result(operation="ORDERHISTORY"),
)

#: CMI's answer -> the event it reports.
EVENTS: dict[str, tuple[OrderStatus | None, Event]] = {
    "none": (None, Event.status_sync(None)),
    "PRE": (order(OrderState.PRE), Event.status_sync("PRE", A)),
    "POST": (order(OrderState.POST, A), Event.status_sync("POST", A, A)),
    "VOID": (order(OrderState.VOID), Event.status_sync("VOID")),
    "RFND": (order(OrderState.RFND, A), Event.status_sync("RFND", A, A, Decimal("40.00"))),
    "PENDING": (order(OrderState.PENDING), Event.status_sync(None)),
    "ERROR": (order(OrderState.ERROR), Event.status_sync(None)),
    "UNKNOWN": (order(OrderState.UNKNOWN), Event.status_sync(None)),
}


@pytest.mark.parametrize("name", list(EVENTS))
def test_every_order_state_maps_to_its_event(name: str) -> None:
    answer, event = EVENTS[name]
    assert status_event(answer, HISTORY) == event


def test_rfnd_without_history_keeps_the_shops_refunded_total() -> None:
    assert status_event(order(OrderState.RFND, A)) == Event.status_sync("RFND", A, A, None)


def test_refund_amounts_are_the_approved_credit_lines() -> None:
    assert refund_amounts(HISTORY) == [Decimal("30.00"), Decimal("10.00")]
    assert refund_amounts(None) == []


#: payment state -> CMI's order state -> the effects the report has (None: refused).
APPLIED: dict[PaymentState, dict[str, tuple[str, ...] | None]] = {
    PaymentState.CREATED: {"PRE": ("authorised",), "POST": ("authorised", "captured")},
    PaymentState.REDIRECTED: {"PRE": ("authorised",), "POST": ("authorised", "captured")},
    PaymentState.DECLINED: {"PRE": ("authorised",), "POST": ("authorised", "captured")},
    PaymentState.AUTHORISED: {"PRE": (), "POST": ("captured",)},
    PaymentState.CAPTURED: {"PRE": (), "POST": ()},
    PaymentState.PARTIALLY_REFUNDED: {"PRE": (), "POST": ()},
    PaymentState.REFUNDED: {"PRE": (), "POST": ()},
    PaymentState.VOIDED: {"PRE": (), "POST": ("captured",)},
    PaymentState.NEEDS_ATTENTION: {"PRE": (), "POST": ("captured",)},
}


@pytest.mark.parametrize("state", list(PaymentState))
@pytest.mark.parametrize("name", ["none", "PRE", "POST", "VOID", "PENDING"])
def test_a_report_applied_from_every_state(state: PaymentState, name: str) -> None:
    before = STATUS[state]
    answer, _ = EVENTS[name]
    try:
        after = apply(before, status_event(answer, HISTORY))
    except TransitionError:  # pragma: no cover - every state takes STATUS_SYNC
        pytest.fail(f"{state} refused {name}")
    found = tuple(e.kind.value for e in effects(before, after))
    if name in ("none", "PENDING"):
        assert after == before
    elif name == "VOID":
        voided = state is not PaymentState.VOIDED
        assert found == (("voided",) if voided else ())
    else:
        assert found == APPLIED[state][name]
    if found[:1] == (EffectKind.AUTHORISED.value,):
        assert after.state.is_paid
        assert before.state.is_pending


def test_approval_result_stands_for_the_answer() -> None:
    result = approval_result(order(OrderState.PRE), oid="o-1", amount=A, currency="504")
    assert (result.oid, result.approved, result.amount, result.currency) == ("o-1", True, A, "504")
    assert (result.trans_id, result.auth_code, result.host_ref_num) == ("T-STATUS", "P-1", "H-1")
    assert (result.masked_pan, result.card_brand, result.error) == ("400000***7190", "", None)
    assert result.fields == {"TRANS_STAT": "A"}
