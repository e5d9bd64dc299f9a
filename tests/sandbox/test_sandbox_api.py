"""The emulator's CC5 XML API (docs/protocol.md#the-xml-api), raw and through cmi_core.api."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests
from defusedxml.ElementTree import fromstring

from cmi_core.api import CMIClient, OrderNotFoundError, OrderState
from cmi_core.errors import APIError
from cmi_core.sandbox import DEFAULT_MERCHANT, ManualClock, Sandbox

from .support import Browser, Merchant, config_for, payment_fields

USER = DEFAULT_MERCHANT.api_username
PASSWORD = DEFAULT_MERCHANT.api_password
CLIENT = DEFAULT_MERCHANT.client_id


def xml_request(
    oid: str,
    type_: str = "",
    total: str = "",
    extra: str = "",
    *,
    name: str = USER,
    password: str = PASSWORD,
    client_id: str = CLIENT,
    currency: str = "",
) -> str:
    parts = [
        f"<Name>{name}</Name><Password>{password}</Password><ClientId>{client_id}</ClientId>",
        f"<OrderId>{oid}</OrderId>",
    ]
    if type_:
        parts.append(f"<Type>{type_}</Type>")
    if total:
        parts.append(f"<Total>{total}</Total>")
    if currency:
        parts.append(f"<Currency>{currency}</Currency>")
    if extra:
        parts.append(f"<Extra><{extra}>QUERY</{extra}></Extra>")
    return "<?xml version='1.0' encoding='UTF-8'?><CC5Request>" + "".join(parts) + "</CC5Request>"


def call(sandbox: Sandbox, body: str | bytes, *, form: bool = False) -> dict[str, str]:
    if form:
        answer = requests.post(sandbox.api_url, data={"DATA": body}, timeout=5)
    else:
        answer = requests.post(
            sandbox.api_url, data=body, headers={"Content-Type": "text/xml"}, timeout=5
        )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/xml")
    root = fromstring(answer.content)
    assert root.tag == "CC5Response"
    values = {child.tag: child.text or "" for child in root if child.tag != "Extra"}
    extra = root.find("Extra")
    assert extra is not None
    values.update({f"Extra/{child.tag}": child.text or "" for child in extra})
    return values


def refused(values: dict[str, str], code: str | None = None) -> bool:
    ok = values["Response"] == "Error" and values["ProcReturnCode"] == "99"
    return ok and (code is None or values["Extra/ERRORCODE"] == code)


@pytest.fixture
def pre_order(sandbox: Sandbox, merchant: Merchant, browser: Browser) -> str:
    """An order pre-authorised for 120.50 MAD (the merchant answered APPROVED)."""
    merchant.reply = "APPROVED"
    browser.open(payment_fields(sandbox, merchant, oid="API-1", amount=Decimal("120.50")))
    browser.pay()
    order = sandbox.order("API-1")
    assert order is not None
    assert order.state == "PRE"
    return "API-1"


def test_postauth_full(sandbox: Sandbox, pre_order: str) -> None:
    values = call(sandbox, xml_request(pre_order, "PostAuth"))
    assert values["Response"] == "Approved"
    assert values["ProcReturnCode"] == "00"
    assert values["OrderId"] == pre_order
    assert len(values["HostRefNum"]) == 12
    assert values["TransId"]
    assert values["Extra/TRXDATE"] == "20250610 10:00:00"
    order = sandbox.order(pre_order)
    assert order is not None
    assert (order.state, order.captured) == ("POST", Decimal("120.50"))


def test_partial_capture_once_and_not_above_authorised(sandbox: Sandbox, pre_order: str) -> None:
    assert refused(call(sandbox, xml_request(pre_order, "PostAuth", "120.51")), "CORE-2006")
    assert call(sandbox, xml_request(pre_order, "PostAuth", "100.00"))["Response"] == "Approved"
    order = sandbox.order(pre_order)
    assert order is not None
    assert order.captured == Decimal("100.00")
    assert refused(call(sandbox, xml_request(pre_order, "PostAuth", "10.00")), "CORE-2006")


@pytest.mark.parametrize("total", ["0", "-5", "abc", "1.234"])
def test_bad_totals(sandbox: Sandbox, pre_order: str, total: str) -> None:
    assert refused(call(sandbox, xml_request(pre_order, "PostAuth", total)), "CORE-2515")


def test_void_preauth(sandbox: Sandbox, pre_order: str, clock: ManualClock) -> None:
    clock.advance(days=3)  # a pre-authorisation can be voided any day
    values = call(sandbox, xml_request(pre_order, "Void"))
    assert values["Response"] == "Approved"
    order = sandbox.order(pre_order)
    assert order is not None
    assert order.state == "VOID"
    assert refused(call(sandbox, xml_request(pre_order, "Void")), "CORE-2008")
    assert refused(call(sandbox, xml_request(pre_order, "PostAuth")), "CORE-2006")


def test_void_capture_same_day_only(sandbox: Sandbox, pre_order: str, clock: ManualClock) -> None:
    call(sandbox, xml_request(pre_order, "PostAuth"))
    clock.advance(days=1)
    values = call(sandbox, xml_request(pre_order, "Void"))
    assert refused(values, "CORE-2008")
    assert values["ErrMsg"]
    order = sandbox.order(pre_order)
    assert order is not None
    assert order.state == "POST"


def test_void_capture_the_same_day(sandbox: Sandbox, pre_order: str, clock: ManualClock) -> None:
    call(sandbox, xml_request(pre_order, "PostAuth"))
    clock.advance(3600)
    assert call(sandbox, xml_request(pre_order, "Void"))["Response"] == "Approved"
    order = sandbox.order(pre_order)
    assert order is not None
    assert order.state == "VOID"


def test_credit_rules(sandbox: Sandbox, pre_order: str) -> None:
    assert refused(call(sandbox, xml_request(pre_order, "Credit", "10.00")), "CORE-2508")
    call(sandbox, xml_request(pre_order, "PostAuth", "100.00"))
    assert refused(call(sandbox, xml_request(pre_order, "Credit", "100.01")), "CORE-2508")
    assert call(sandbox, xml_request(pre_order, "Credit", "60.00"))["Response"] == "Approved"
    # Only 40.00 remains: a second 60.00 is refused, 40.00 passes, then nothing is left.
    assert refused(call(sandbox, xml_request(pre_order, "Credit", "60.00")), "CORE-2508")
    assert call(sandbox, xml_request(pre_order, "Credit", "40.00"))["Response"] == "Approved"
    assert refused(call(sandbox, xml_request(pre_order, "Credit", "0.01")), "CORE-2508")
    assert refused(call(sandbox, xml_request(pre_order, "Void")), "CORE-2008")
    order = sandbox.order(pre_order)
    assert order is not None
    assert (order.state, order.refunded) == ("RFND", Decimal("100.00"))


def test_credit_currency_must_match(sandbox: Sandbox, pre_order: str) -> None:
    call(sandbox, xml_request(pre_order, "PostAuth"))
    assert refused(
        call(sandbox, xml_request(pre_order, "Credit", "1.00", currency="978")), "CORE-2515"
    )
    assert (
        call(sandbox, xml_request(pre_order, "Credit", "1.00", currency="504"))["Response"]
        == "Approved"
    )


def test_orderstatus_fields(sandbox: Sandbox, pre_order: str) -> None:
    values = call(sandbox, xml_request(pre_order, extra="ORDERSTATUS"))
    assert values["Response"] == "Approved"
    assert values["ErrMsg"] == f"Record(s) found for {pre_order}"
    assert values["Extra/TRANS_STAT"] == "A"
    assert values["Extra/CHARGE_TYPE_CD"] == "S"
    assert values["Extra/ORIG_TRANS_AMT"] == "12050"
    assert values["Extra/CAPTURE_AMT"] == "0"
    assert values["Extra/ORD_ID"] == pre_order
    assert values["Extra/PAN"] == "411111***1111"
    assert values["Extra/PROC_RET_CD"] == "00"
    assert values["Extra/MDSTATUS"] == "1"
    assert values["Extra/AUTH_DTTM"] == "2025-06-10 10:00:00.000"
    assert len(values["Extra/AUTH_CODE"]) == 6
    for name in ("CAPTURE_DTTM", "HOST_REF_NUM", "TRANS_ID", "VOID_DTTM"):
        assert f"Extra/{name}" in values
    call(sandbox, xml_request(pre_order, "PostAuth", "100.00"))
    captured = call(sandbox, xml_request(pre_order, extra="ORDERSTATUS"))
    assert (captured["Extra/TRANS_STAT"], captured["Extra/CAPTURE_AMT"]) == ("C", "10000")
    assert captured["Extra/CAPTURE_DTTM"]
    call(sandbox, xml_request(pre_order, "Credit", "1.00"))
    refunded = call(sandbox, xml_request(pre_order, extra="ORDERSTATUS"))
    assert refunded["Extra/CHARGE_TYPE_CD"] == "C"


def test_orderhistory_lines(sandbox: Sandbox, pre_order: str) -> None:
    call(sandbox, xml_request(pre_order, "PostAuth", "100.00"))
    call(sandbox, xml_request(pre_order, "Credit", "25.50"))
    values = call(sandbox, xml_request(pre_order, extra="ORDERHISTORY"))
    assert values["Extra/TRXCOUNT"] == "3"
    lines = [values[f"Extra/TRX{n}"].split("\t") for n in (1, 2, 3)]
    assert all(len(cells) == 11 for cells in lines)
    assert [cells[:4] for cells in lines] == [
        ["S", "A", "12050", "0"],
        ["S", "C", "10000", "10000"],
        ["C", "C", "2550", "2550"],
    ]
    assert lines[1][5] == "2025-06-10 10:00:00.000"  # capture time
    assert [cells[9] for cells in lines] == ["00", "00", "00"]
    assert "Extra/TRX4" not in values


def test_history_includes_declined_attempts(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    merchant.reply = "APPROVED"
    browser.open(payment_fields(sandbox, merchant, oid="API-D"))
    browser.pay(pan="4000000000000515")
    status = call(sandbox, xml_request("API-D", extra="ORDERSTATUS"))
    assert (status["Extra/TRANS_STAT"], status["Extra/PROC_RET_CD"]) == ("D", "51")
    browser.pay()
    history = call(sandbox, xml_request("API-D", extra="ORDERHISTORY"))
    assert history["Extra/TRXCOUNT"] == "2"
    assert history["Extra/TRX1"].split("\t")[1] == "D"
    assert history["Extra/TRX2"].split("\t")[1] == "A"


@pytest.mark.parametrize(
    "body",
    [
        xml_request("NOPE", "PostAuth"),
        xml_request("NOPE", "Void"),
        xml_request("NOPE", "Credit", "1.00"),
        xml_request("NOPE", extra="ORDERSTATUS"),
        xml_request("NOPE", extra="ORDERHISTORY"),
    ],
)
def test_unknown_order(sandbox: Sandbox, body: str) -> None:
    values = call(sandbox, body)
    assert refused(values)
    assert values["ErrMsg"] == "No record found for NOPE"


@pytest.mark.parametrize(
    "body",
    [
        xml_request("API-1", "PostAuth", password="wrong"),
        xml_request("API-1", "PostAuth", name="someone"),
        xml_request("API-1", "PostAuth", client_id="999"),
        xml_request("API-1", "PostAuth", name="", password=""),
    ],
)
def test_bad_credentials(sandbox: Sandbox, pre_order: str, body: str) -> None:
    assert refused(call(sandbox, body), "CORE-2001")
    order = sandbox.order(pre_order)
    assert order is not None
    assert order.state == "PRE"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<CC5Request><Name>",
        b"<Other/>",
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "x">]><CC5Request>&e;</CC5Request>',
        b"\xff\xfe<CC5Request/>",
        xml_request("API-1", "Explode").encode(),
        xml_request("", "PostAuth").encode(),
        b"<CC5Request>" + b"<x>1</x>" * 20000 + b"</CC5Request>",
        # An encoding Python does not know: LookupError, not a ParseError.
        b'<?xml version="1.0" encoding="bogus-xx"?><CC5Request/>',
        b"DATA=" + b'<?xml version="1.0" encoding="bogus-xx"?><CC5Request/>',
    ],
)
def test_malformed_requests_get_an_error_document(sandbox: Sandbox, body: bytes) -> None:
    assert refused(call(sandbox, body))


def test_data_form_field(sandbox: Sandbox, pre_order: str) -> None:
    values = call(sandbox, xml_request(pre_order, extra="ORDERSTATUS"), form=True)
    assert values["Response"] == "Approved"


def test_get_on_api_is_405(sandbox: Sandbox) -> None:
    assert requests.get(sandbox.api_url, timeout=5).status_code == 405


def test_cmi_client_against_the_sandbox(sandbox: Sandbox, pre_order: str) -> None:
    with CMIClient(config_for(sandbox), retries=0) as client:
        assert client.status(pre_order).state is OrderState.PRE
        client.capture(pre_order, Decimal("100.00"))
        status = client.status(pre_order)
        assert (status.state, status.captured_amount) == (OrderState.POST, Decimal("100.00"))
        client.refund(pre_order, Decimal("30.00"))
        assert client.status(pre_order).state is OrderState.RFND
        history = client.history(pre_order)
        assert [t.charge_type for t in history.transactions] == ["S", "S", "C"]
        assert history.transactions[2].amount == Decimal("30.00")
        with pytest.raises(APIError) as refusal:
            client.refund(pre_order, Decimal("80.00"))
        assert refusal.value.error_code == "CORE-2508"
        with pytest.raises(OrderNotFoundError):
            client.status("NOPE")
