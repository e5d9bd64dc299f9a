"""Money moves on an order: pre-authorisation, capture, void, refund (guide §5).

One place decides what CMI allows, for the callback reply (``ACTION=POSTAUTH``), the XML
API and the Merchant Center alike:

- PreAuth (an approved attempt): order state PRE.
- PostAuth: from PRE only, once; any amount up to the authorised one (a smaller capture
  releases the rest). State POST.
- Void: a PRE order at any time, a POST order only on the day of its capture (Moroccan
  time) and before any refund. State VOID.
- Credit: after a capture only, never more than captured minus already refunded; partial
  refunds allowed. State RFND.

A refused operation raises :class:`Refusal` and changes nothing; every change runs in one
store transaction, so two concurrent captures of the same order capture once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from cmi_core.sandbox.clock import Clock, local
from cmi_core.sandbox.results import new_ids
from cmi_core.sandbox.storage import OrderRow, Store, TransactionRow

__all__ = ["Done", "Ledger", "Refusal"]

#: ``Extra/ERRORCODE`` of each refusal (CORE-2008 and CORE-2508 as
#: docs/protocol.md#the-xml-api names them; the others are the emulator's choice, see
#: docs/sandbox.md).
NO_RECORD = ""
BAD_AMOUNT = "CORE-2515"
CAPTURE_REFUSED = "CORE-2006"
VOID_REFUSED = "CORE-2008"
CREDIT_REFUSED = "CORE-2508"


class Refusal(Exception):  # noqa: N818 - CMI's word for it
    """CMI refuses the operation (Response=Error, ProcReturnCode 99, ``err_code``)."""

    def __init__(self, err_code: str, message: str) -> None:
        self.err_code = err_code
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Done:
    """An accepted operation: the order after it and the transaction it recorded."""

    order: OrderRow
    transaction: TransactionRow


class Ledger:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def _order(self, client_id: str, oid: str) -> OrderRow:
        order = self.store.get_order(client_id, oid)
        if order is None:
            raise Refusal(NO_RECORD, f"No record found for {oid}")
        return order

    def _preauth(self, order: OrderRow) -> TransactionRow:
        for transaction in reversed(self.store.transactions(order.id)):
            if transaction.type == "PreAuth" and transaction.response == "Approved":
                return transaction
        raise Refusal(NO_RECORD, f"No record found for {order.oid}")

    def capture(self, client_id: str, oid: str, amount: Decimal | None = None) -> Done:
        now = self.clock.now()
        with self.store.transaction():
            order = self._order(client_id, oid)
            if order.state != "PRE":
                raise Refusal(
                    CAPTURE_REFUSED,
                    f"PostAuth not possible: order {oid} is {order.state}, not pre-authorised",
                )
            total = order.authorized if amount is None else amount
            if total <= 0:
                raise Refusal(BAD_AMOUNT, "Invalid amount")
            if total > order.authorized:
                raise Refusal(
                    CAPTURE_REFUSED, "PostAuth amount is greater than the authorised amount"
                )
            preauth = self._preauth(order)
            ids = new_ids(now)
            transaction = self.store.add_transaction(
                order.id,
                "PostAuth",
                total,
                now,
                trans_id=ids.trans_id,
                host_ref_num=ids.host_ref_num,
                auth_code=preauth.auth_code,
            )
            self.store.update_order(order.id, now, state="POST", captured=total)
            return Done(self._order(client_id, oid), transaction)

    def void(self, client_id: str, oid: str) -> Done:
        now = self.clock.now()
        with self.store.transaction():
            order = self._order(client_id, oid)
            transactions = self.store.transactions(order.id)
            live = [t for t in transactions if t.response == "Approved" and t.voided_at is None]
            if order.state == "PRE":
                targets = [t for t in live if t.type == "PreAuth"]
                amount = order.authorized
            elif order.state == "POST":
                capture = next(t for t in reversed(live) if t.type == "PostAuth")
                if not same_day(capture.created_at, now):
                    raise Refusal(
                        VOID_REFUSED,
                        "Void not possible: the capture is from a previous day, use Credit",
                    )
                targets = [t for t in live if t.type in ("PreAuth", "PostAuth")]
                amount = order.captured
            else:
                raise Refusal(
                    VOID_REFUSED,
                    f"Void not possible: no eligible transaction (order {order.state})",
                )
            reference = targets[-1]
            ids = new_ids(now)
            self.store.mark_voided([t.id for t in targets], now)
            transaction = self.store.add_transaction(
                order.id,
                "Void",
                amount,
                now,
                trans_id=ids.trans_id,
                host_ref_num=ids.host_ref_num,
                auth_code=reference.auth_code,
            )
            self.store.update_order(order.id, now, state="VOID")
            return Done(self._order(client_id, oid), transaction)

    def credit(self, client_id: str, oid: str, amount: Decimal | None = None) -> Done:
        now = self.clock.now()
        with self.store.transaction():
            order = self._order(client_id, oid)
            if order.state not in ("POST", "RFND"):
                raise Refusal(
                    CREDIT_REFUSED,
                    f"Credit not possible: order {oid} is {order.state}, not captured",
                )
            remaining = order.captured - order.refunded
            total = remaining if amount is None else amount
            if total <= 0 and amount is not None:
                raise Refusal(BAD_AMOUNT, "Invalid amount")
            if remaining <= 0:
                raise Refusal(CREDIT_REFUSED, "Credit not possible: the order is fully refunded")
            if total > remaining:
                raise Refusal(
                    CREDIT_REFUSED,
                    "Credit amount is greater than the captured amount not yet refunded",
                )
            ids = new_ids(now)
            transaction = self.store.add_transaction(
                order.id,
                "Credit",
                total,
                now,
                trans_id=ids.trans_id,
                host_ref_num=ids.host_ref_num,
                auth_code=ids.auth_code,
            )
            self.store.update_order(order.id, now, state="RFND", refunded=order.refunded + total)
            return Done(self._order(client_id, oid), transaction)


def same_day(first: datetime, second: datetime) -> bool:
    return local(first).date() == local(second).date()
