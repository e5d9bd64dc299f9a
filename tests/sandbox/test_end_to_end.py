"""End to end over real HTTP on loopback, the whole core against the emulator.

``cmi_core`` builds the request -> the emulator's card form is submitted -> the callback
reaches a merchant server that verifies it and replies through the core's decision ->
the core's API client captures, partially refunds and reads the status.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

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
from cmi_core.hashing import ALL_READINGS, Reading
from cmi_core.request import LineItem
from cmi_core.sandbox import DEFAULT_MERCHANT, Sandbox, build_cli_parser
from cmi_core.sandbox.cli import _sandbox_from_args, banner
from cmi_core.states import Event

from .support import Browser, Merchant, Received, config_for, payment_fields, resign

AMOUNT = Decimal("120.50")


class Shop:
    """The merchant's side: payments in memory, every callback decided by the core."""

    def __init__(self, capture_mode: str = "auto") -> None:
        self.lock = threading.Lock()
        self.payments: dict[str, KnownPayment] = {}
        self.capture_mode = capture_mode
        self.replies: list[str] = []
        self.requests: dict[str, dict[str, str]] = {}
        self.readings: list[str] = []
        self.names: list[str] = []

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
            if result is not None:
                self.readings.append(result.reading)
                self.names.append(result.fields.get("BillToName", ""))
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


@pytest.mark.parametrize("reading", [r.value for r in ALL_READINGS])
def test_payment_end_to_end_in_each_reading_of_the_hash(
    sandbox: Sandbox, merchant: Merchant, reading: str
) -> None:
    """Issue #17: whichever way CMI reads §4.1.3, a "Porte-Documents" payment goes through.

    The emulator verifies the request in ``reading`` only (a request hashed the guide's
    way alone is refused 3D-1004 under ``kit``) and signs the callback and the okUrl POST
    in it (HTML-encoded values under ``kit-decoded``); the core's callback verification
    accepts it, names the reading and hands over the shopper's name as typed.
    """
    sandbox.reading = Reading(reading)
    shop = Shop()
    merchant.reply = shop.on_callback
    oid = f"E2E-R-{reading}"
    fields = payment_fields(
        sandbox,
        merchant,
        oid=oid,
        amount=AMOUNT,
        billing_name="O'Brien & fils",
        description="Porte-Documents cuir",
        items=[LineItem(id="1", description="Classeur documenté", unit_price=AMOUNT)],
    )
    shop.expect(oid, fields)
    browser = Browser(sandbox)
    assert browser.open(fields).status_code == 200  # not 3D-1004: the hash is right
    sent = dict(fields)
    assert sent["description"] == "Porte-documents cuir"
    assert sent["desc1"] == "Classeur documente"
    browser.pay()
    merchant.wait_for("/callback", 1)
    sandbox.wait_for_callbacks()

    assert shop.replies == ["ACTION=POSTAUTH"]
    assert shop.payments[oid].status.state is PaymentState.CAPTURED
    # Neutralised values hash alike in the guide's and the kit's readings, so only the
    # HTML-encoded post needs the decoding reading.
    expected = "kit-decoded" if reading == "kit-decoded" else "guide"
    assert shop.readings == [expected]
    assert shop.names == ["O'Brien & fils"]
    posted = dict(merchant.callbacks[0].fields)
    if reading == "kit-decoded":
        assert posted["BillToName"] == "O&#039;Brien &amp; fils"
    else:
        assert posted["BillToName"] == "O'Brien & fils"

    _, returned = browser.return_form()
    result = verify_callback(dict(returned), DEFAULT_MERCHANT.store_key)
    assert result.approved
    assert result.reading == expected
    assert result.fields["BillToName"] == "O'Brien & fils"


@pytest.mark.parametrize(
    ("reading", "status"), [("guide", 200), ("kit", 400), ("kit-decoded", 400)]
)
def test_the_emulator_verifies_requests_in_its_reading_only(
    sandbox: Sandbox, merchant: Merchant, reading: str, status: int
) -> None:
    """A request hashed the guide's way with "Porte-Documents" in it (what the request
    builder no longer sends) is refused 3D-1004 by a gateway reading the guide as the
    kits do."""
    sandbox.reading = Reading(reading)
    fields = payment_fields(sandbox, merchant, oid=f"E2E-G-{reading}", amount=AMOUNT)
    fields = resign([*fields, ("description", "Porte-Documents cuir")])
    page = Browser(sandbox).open(fields)
    assert page.status_code == status
    assert ("3D-1004" in page.text) is (status == 400)


def test_reading_from_the_command_line_and_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "sandbox.json"
    config.write_text(json.dumps({"reading": "kit"}), encoding="utf-8")
    data = ["--port", "0", "--data-dir", str(tmp_path / "data")]
    args = build_cli_parser().parse_args(["--config", str(config), *data])
    sandbox = _sandbox_from_args(args)
    try:
        assert sandbox.reading is Reading.KIT
        assert "hash reading    kit" in banner(sandbox)
    finally:
        sandbox.stop()
    args = build_cli_parser().parse_args(["--reading", "kit-decoded", *data])
    sandbox = _sandbox_from_args(args)
    try:
        assert sandbox.reading is Reading.KIT_DECODED
    finally:
        sandbox.stop()
    assert build_cli_parser().parse_args([]).reading is None  # guide by default
    with pytest.raises(SystemExit):
        build_cli_parser().parse_args(["--reading", "php"])
