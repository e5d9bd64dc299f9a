"""CMI's status report applied to a payment: :func:`refresh`, :func:`check_status` (guide §5).

CMI's ORDERSTATUS (and ORDERHISTORY) are asked with no transaction of ours open and no
lock held; :func:`cmi_core.order_status.status_event` says what the answer means; it is
applied under a short lock. The open operations are settled from CMI's history
(:func:`_settle`), never by sending them again. An approval learned this way goes through
:func:`cmi_django.inbound.approve_without_callback`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from cmi_core import (
    APIError,
    CMIClient,
    CMIConfig,
    Event,
    OrderHistory,
    OrderNotFoundError,
    OrderState,
    OrderStatus,
    PaymentStatus,
    TransitionError,
    apply,
)
from cmi_core.approvals import is_approval
from cmi_core.jsonable import jsonable
from cmi_core.order_status import approval_result, refund_amounts, status_event
from cmi_django.changes import error_text, source_of
from cmi_django.hooks import RetryableHookError
from cmi_django.inbound import approve_without_callback
from cmi_django.models import Operation, Payment
from cmi_django.operations import (
    OperationPendingError,
    answer_by,
    api_config,
    api_error_record,
    budget,
    flag,
    in_flight,
    lock_payment,
    notify_after_operation,
    open_money_operations,
)

__all__ = ["StatusCheck", "check_status", "refresh"]

logger = logging.getLogger("cmi_django")


@dataclass(frozen=True)
class StatusCheck:
    """CMI's view of a payment and what it would make of ours (nothing saved).

    ``order`` is None when CMI has no record of the oid (the shopper never paid).
    """

    order: OrderStatus | None
    event: Event
    before: PaymentStatus
    after: PaymentStatus

    @property
    def changes(self) -> bool:
        return self.after != self.before


@dataclass(frozen=True)
class _Answer:
    """What CMI said of an order: ORDERSTATUS (None: no record), ORDERHISTORY if asked."""

    order: OrderStatus | None
    history: OrderHistory | None


def _ask(client: CMIClient, payment: Payment, *, history: bool, by: float | None = None) -> _Answer:
    """ORDERSTATUS, and ORDERHISTORY when asked or when the order has refunds (§5).

    ``by`` (``time.monotonic()``): both calls together give up by then, the history
    call getting what the status call left; None: each has the config's deadline.
    """

    def left() -> float | None:
        return None if by is None else by - time.monotonic()

    try:
        order: OrderStatus | None = client.status(payment.oid, payment.currency, within=left())
    except OrderNotFoundError:
        return _Answer(None, None)
    found = None
    if order is not None and (history or order.state is OrderState.RFND):
        found = client.history(payment.oid, payment.currency, within=left())
    return _Answer(order, found)


def _check(client: CMIClient, payment: Payment) -> StatusCheck:
    answer = _ask(client, payment, history=False)
    event = status_event(answer.order, answer.history)
    before = payment.status
    return StatusCheck(answer.order, event, before, apply(before, event))


def check_status(payment: Payment) -> StatusCheck:
    """Ask CMI (ORDERSTATUS) and compute the sync, without saving anything."""
    with CMIClient(api_config(payment)) as client:
        return _check(client, payment)


def _settle(
    locked: Payment, answer: _Answer, config: CMIConfig, asked_at: datetime
) -> list[Operation]:
    """Decide the open money operations from CMI's answer (rows changed, not saved).

    Refunds are matched by amount to the Credit lines of CMI's history that no succeeded
    refund accounts for; a capture succeeded when CMI captured more than the shop knows;
    a void when CMI's order is VOID. What CMI's history does not show did not happen (the
    call's deadline has passed), so it is ``failed``. Nothing is ever sent again. An open
    operation whose call's deadline had not passed when CMI was asked (``asked_at``),
    ``pending`` or ``unknown``, raises :class:`OperationPendingError`: CMI's answer may
    predate what that call did (an ``unknown`` one too: its answer was lost, not its
    effect).
    """
    open_ops = open_money_operations(locked)
    if not open_ops:
        return []
    horizon = asked_at - in_flight(config)
    young = [o for o in open_ops if o.created_at > horizon]
    needs_history = any(o.kind == "refund" for o in open_ops) and answer.order is not None
    if young or (needs_history and answer.history is None):
        raise OperationPendingError(
            locked.state,
            "status_sync",
            f"a {open_ops[0].kind} of this payment is being sent to CMI; refresh again in a minute",
        )
    unmatched = refund_amounts(answer.history)
    done = locked.operations.filter(kind="refund", state=Operation.SUCCEEDED)
    for amount in done.values_list("amount", flat=True):
        if amount in unmatched:
            unmatched.remove(amount)
    order = answer.order
    cmi_captured = Decimal(0)
    if order is not None and order.state in (OrderState.POST, OrderState.RFND):
        cmi_captured = order.captured_amount or order.amount or Decimal(0)
    shop_captured = locked.captured_amount
    for operation in open_ops:
        happened = False
        if operation.kind == "refund" and operation.amount in unmatched:
            unmatched.remove(operation.amount)
            happened = True
        elif operation.kind == "capture" and cmi_captured > shop_captured:
            operation.amount, shop_captured, happened = (
                cmi_captured - shop_captured,
                cmi_captured,
                True,
            )
        elif operation.kind == "void":
            happened = order is not None and order.state is OrderState.VOID
        was = operation.state
        operation.state = Operation.SUCCEEDED if happened else Operation.FAILED
        operation.succeeded = happened
        operation.error = f"was {was}; settled from CMI's order history: " + (
            "CMI did it" if happened else "CMI has no trace of it, nothing was re-sent"
        )
    return open_ops


def refresh(
    payment: Payment, *, user: str = "", source: str = "refresh", within: float | None = None
) -> Operation:
    """Ask CMI for the order's status and apply it (STATUS_SYNC: PRE, POST, RFND, VOID).

    CMI is the authority: this is how a payment leaves NEEDS_ATTENTION, and how open
    (``pending`` past their call's deadline, or ``unknown``) captures, voids and refunds
    are settled from CMI's order history (:func:`_settle`), never by sending them again.
    CMI is asked with no transaction of ours open; its answer is applied under a short
    lock, and only if the payment did not change meanwhile (a capture, a refund, a
    callback recorded while CMI was asked: the answer may predate it, and applying it
    would undo it in the shop; :class:`OperationPendingError`, refresh again). A report
    the state machine refuses raises :class:`cmi_core.TransitionError` after recording
    the failed operation (:class:`OperationPendingError` while an operation's call may
    still be running); CMI's own errors raise
    :class:`cmi_core.APIError` likewise. An approval learned this way (the payment was
    not paid, CMI says it is) goes through :func:`approve_without_callback` with
    ``source`` (``"refresh"``, ``"reconcile"``, ``"saleor-process"``...): manual capture
    from then on, captured through the API after the commit when it was in auto mode.
    The change reaches the platform hook with the source
    :func:`cmi_django.changes.source_of` gives that label: ``sync``, ``reconcile``, or
    ``platform`` for a platform's own label.

    ``within``: the seconds the caller can wait for CMI (Saleor gives up on a webhook
    after about 18 s). CMI's calls share it: the status call, then the history call when
    one is needed (open money operations, an RFND order) with what the first one left;
    CMI not answering by then is an :class:`cmi_core.APIError` like any other, recorded as a
    failed status operation, with nothing changed. Open operations are still
    settled by the channel's own deadlines (:func:`in_flight`), never by the cut one. A
    capture the approval sets off in this call (auto mode, a task the immediate backend
    runs at once) gives up on CMI by the same time (:func:`cmi_django.operations.budget`).
    """
    with budget(within):
        return _refresh(payment, user=user, source=source, within=within)


def _refresh(payment: Payment, *, user: str, source: str, within: float | None) -> Operation:
    config = api_config(payment)
    by = answer_by(within)
    record: dict[str, Any] = {"payment": payment, "kind": "status", "user": user[:150]}
    asked = Payment.objects.get(pk=payment.pk).status  # what CMI's answer is compared to
    asked_at = timezone.now()
    try:
        with CMIClient(config) as client:
            answer = _ask(client, payment, history=bool(open_money_operations(payment)), by=by)
    except APIError as exc:
        logger.warning("status of %s not applied: %s", payment.oid, exc)
        Operation.objects.create(
            state=Operation.FAILED, response=api_error_record(exc), error=str(exc)[:1000], **record
        )
        payment.refresh_from_db()
        raise
    raised: Exception | None = None
    with transaction.atomic():
        locked = lock_payment(payment.pk)
        record["payment"] = locked
        try:
            if locked.status != asked:  # changed while CMI was asked: the answer is stale
                raise OperationPendingError(
                    locked.state,
                    "status_sync",
                    "the payment changed while CMI was asked (an operation or a callback "
                    "meanwhile); refresh again",
                )
            settled = _settle(locked, answer, config, asked_at)
            event = status_event(answer.order, answer.history)
            before = locked.status
            after = apply(before, event)
        except TransitionError as exc:
            logger.warning("status of %s not applied: %s", locked.oid, exc)
            operation = Operation.objects.create(
                state=Operation.FAILED,
                response={"error": str(exc)},
                error=str(exc)[:1000],
                **record,
            )
            raised = exc
        else:
            for settled_operation in settled:
                settled_operation.save()
            order = answer.order
            result = None
            if order is not None:
                result = approval_result(
                    order, oid=locked.oid, amount=locked.amount, currency=locked.currency
                )
            approval = result is not None and is_approval(before, after)
            if approval and result is not None:
                approve_without_callback(locked, result, source=source, sync=after)
            else:
                if after != before:
                    locked.set_status(after)
                locked.save()
            response = jsonable(order) if order is not None else {"state": None, "found": False}
            operation = Operation.objects.create(
                state=Operation.SUCCEEDED, succeeded=True, response=response, **record
            )
            raised = notify_after_operation(
                locked, before, operation, result, source=source_of(source)
            )
            if approval and raised is not None and not isinstance(raised, RetryableHookError):
                # the platform could not record the order: flagged, so nothing is captured
                flag(
                    locked,
                    f"CMI approved this payment but the platform hook failed "
                    f"({error_text(raised)}); void it if it is not wanted"[:1000],
                    source=source_of(source),
                )
    payment.refresh_from_db()
    if raised is not None:
        raise raised
    return operation
