"""End to end over real HTTP on loopback, the whole core against the emulator.

``cmi_core`` builds the request -> the emulator's card form is submitted -> the callback
reaches a merchant server that verifies it and replies through the core's decision ->
the core's API client captures, partially refunds and reads the status.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from cmi_core import (
    CMIClient,
    KnownPayment,
    OrderState,
    PaymentState,
    PaymentStatus,
    apply,
    decide_callback,
    verify_callback,
)
from cmi_core.errors import CMIError
from cmi_core.sandbox import DEFAULT_MERCHANT, Sandbox
from cmi_core.states import Event

from .support import Browser, Merchant, Received, config_for, payment_fields

AMOUNT = Decimal("120.50")


class Shop:
    """The merchant's side: payments in memory, every callback decided by the core."""

    def __init__(self, capture_mode: str = "auto") -> None:
        self.lock = threading.Lock()
        self.payments: dict[str, KnownPayment] = {}
        self.capture_mode = capture_mode
        self.replies: list[str] = []
        self.requests: dict[str, dict[str, str]] = {}

    def expect(self, oid: str, request: Sequence[tuple[str, str]]) -> None:
        self.requests[oid] = dict(request)
        status = apply(PaymentStatus.new(AMOUNT), Event.redirect())
        self.payments[oid] = KnownPayment(
            oid=oid, amount=AMOUNT, currency="504", status=status,
            capture_mode=self.capture_mode,  # type: ignore[arg-type]
        )  # fmt: skip

    def on_callback(self, received: Received) -> tuple[int, str]:
        try:
            expected = self.requests.get(received.values.get("oid", ""), {})
            result = verify_callback(received.values, DEFAULT_MERCHANT.store_key, expected=expected)
        except CMIError:
            result = None
        with self.lock:  # the row lock of a real shop
            known = self.payments.get(result.oid) if result else None
            decision = decide_callback(result, known)
            if known is not None and result is not None and decision.status is not None:
                trans_id = known.trans_id or (result.trans_id if result.approved else "")
                self.payments[known.oid] = replace(known, status=decision.status, trans_id=trans_id)
            self.replies.append(decision.body)
        return 200, decision.body


def test_pay_capture_refund_and_status_end_to_end(sandbox: Sandbox, merchant: Merchant) -> None:
    shop = Shop()
    merchant.reply = shop.on_callback
    fields = payment_fields(sandbox, merchant, oid="E2E-1", amount=AMOUNT)
    shop.expect("E2E-1", fields)

    browser = Browser(sandbox)
    assert browser.open(fields).status_code == 200
    browser.pay(pan="4000000000000051")  # a decline first (ISO8583-05 test card)...
    browser.pay()  # ...then the approved card, on the same page, as on CMI
    merchant.wait_for("/callback", 2)
    sandbox.wait_for_callbacks()

    assert shop.replies == ["APPROVED", "ACTION=POSTAUTH"]
    paid = shop.payments["E2E-1"]
    assert paid.status.state is PaymentState.CAPTURED
    assert paid.status.declined_attempts == 1
    assert paid.status.captured == AMOUNT
    order = sandbox.order("E2E-1")
    assert order is not None
    assert order.state == "POST"

    client = CMIClient(config_for(sandbox))
    status = client.status("E2E-1")
    assert status.state is OrderState.POST
    assert status.captured_amount == AMOUNT

    refund = client.refund("E2E-1", Decimal("20.50"))
    assert refund.approved
    status = client.status("E2E-1")
    assert status.state is OrderState.RFND  # CMI marks an order RFND after any credit
    history = client.history("E2E-1")
    assert [t.amount for t in history.transactions if t.charge_type == "C"] == [Decimal("20.50")]
    shop.payments["E2E-1"] = replace(
        paid, status=apply(paid.status, Event.refund(Decimal("20.50")))
    )
    assert shop.payments["E2E-1"].status.state is PaymentState.PARTIALLY_REFUNDED


def test_manual_capture_then_api_capture(sandbox: Sandbox, merchant: Merchant) -> None:
    shop = Shop(capture_mode="manual")
    merchant.reply = shop.on_callback
    fields = payment_fields(sandbox, merchant, oid="E2E-2", amount=AMOUNT)
    shop.expect("E2E-2", fields)
    browser = Browser(sandbox)
    browser.open(fields)
    browser.pay()
    merchant.wait_for("/callback", 1)
    sandbox.wait_for_callbacks()
    assert shop.replies == ["APPROVED"]
    assert shop.payments["E2E-2"].status.state is PaymentState.AUTHORISED
    order = sandbox.order("E2E-2")
    assert order is not None
    assert order.state == "PRE"

    client = CMIClient(config_for(sandbox))
    assert client.capture("E2E-2", Decimal("100.00")).approved  # partial capture
    status = client.status("E2E-2")
    assert status.state is OrderState.POST
    assert status.captured_amount == Decimal("100.00")


def test_duplicate_callback_gets_the_same_reply_and_one_change(
    sandbox: Sandbox, merchant: Merchant
) -> None:
    shop = Shop()
    merchant.reply = shop.on_callback
    fields = payment_fields(sandbox, merchant, oid="E2E-3", amount=AMOUNT)
    shop.expect("E2E-3", fields)
    sandbox.set_fault("twice", oid="E2E-3")
    browser = Browser(sandbox)
    browser.open(fields)
    browser.pay()
    merchant.wait_for("/callback", 2)
    sandbox.wait_for_callbacks()
    assert shop.replies == ["ACTION=POSTAUTH", "ACTION=POSTAUTH"]
    assert shop.payments["E2E-3"].status.captured == AMOUNT
    history = CMIClient(config_for(sandbox)).history("E2E-3")
    captures = [t for t in history.transactions if t.charge_type == "S" and t.captured_amount]
    assert len(captures) == 1
