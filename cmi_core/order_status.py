"""What CMI's status report means for a payment (guide §5: ORDERSTATUS, ORDERHISTORY).

The shop asks CMI where an order stands when it has no callback to go on (the okUrl came
first, a reconciliation, staff pressing "refresh") or to settle an operation whose answer
was lost. :func:`status_event` turns CMI's answer into the state machine's
:class:`~cmi_core.states.Event` (``STATUS_SYNC``): PRE, POST, VOID, and RFND with the
refunds' total from the order's history; an order CMI has no record of (or one still
PENDING, in ERROR or UNKNOWN) changes nothing. :func:`refund_amounts` lists the approved
Credit lines of the history; :func:`approval_result` is the approval the answer stands for,
typed as a :class:`~cmi_core.callback.CallbackResult` for the shop's hooks (no callback
came). Pure: values in, values out.
"""

from __future__ import annotations

from decimal import Decimal

from cmi_core.api import OrderHistory, OrderState, OrderStatus
from cmi_core.callback import CallbackResult
from cmi_core.states import Event

__all__ = ["approval_result", "refund_amounts", "status_event"]


def refund_amounts(history: OrderHistory | None) -> list[Decimal]:
    """The amounts of the refunds (approved Credit lines, ``CHARGE_TYPE_CD`` C) in CMI's
    order history, in its order; ``[]`` without a history."""
    if history is None:
        return []
    return [
        t.amount or Decimal(0)
        for t in history.transactions
        if t.charge_type.strip().upper() == "C" and t.approved
    ]


def status_event(order: OrderStatus | None, history: OrderHistory | None = None) -> Event:
    """The ``STATUS_SYNC`` event CMI's ORDERSTATUS answer (and ORDERHISTORY) reports.

    ``order`` None: CMI has no record of the oid (the shopper never paid). RFND takes the
    refunded total from ``history`` (None when it is not known: the state machine keeps
    the shop's own).
    """
    if order is None:
        return Event.status_sync(None)
    match order.state:
        case OrderState.PRE:
            return Event.status_sync("PRE", order.amount)
        case OrderState.POST:
            return Event.status_sync("POST", order.amount, order.captured_amount)
        case OrderState.VOID:
            return Event.status_sync("VOID")
        case OrderState.RFND:
            refunded = sum(refund_amounts(history), Decimal(0)) or None
            return Event.status_sync("RFND", order.amount, order.captured_amount, refunded)
    return Event.status_sync(None)


def approval_result(
    order: OrderStatus, *, oid: str, amount: Decimal, currency: str
) -> CallbackResult:
    """The approval CMI's status answer stands for, as a callback result (no callback came).

    ``amount`` and ``currency`` are the payment's (used where CMI's answer has none).
    ``fields`` holds the answer's Extra; the card brand and dates are unknown (empty).
    """
    return CallbackResult(
        oid=oid,
        approved=True,
        response=order.result.response,
        proc_return_code=order.proc_return_code or "00",
        amount=order.amount or amount,
        currency=currency,
        trans_id=order.trans_id,
        auth_code=order.auth_code,
        host_ref_num=order.host_ref_num,
        masked_pan=order.masked_pan,
        card_brand="",
        md_status=order.md_status,
        err_code="",
        err_msg="",
        transaction_date="",
        error=None,
        fields=dict(order.extra),
    )
