"""The CC5 XML API client (docs/protocol.md#the-xml-api) against mocked HTTP (``responses``)."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as StdET
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal

import pytest
import requests
import responses
from defusedxml import DefusedXmlException

from cmi_core.api import (
    CMIClient,
    OrderNotFoundError,
    OrderState,
    order_state,
)
from cmi_core.config import CMIConfig
from cmi_core.errors import APIError, APITransportError, ConfigurationError, ValidationError
from cmi_core.money import get_currency

# A password with XML metacharacters: it must be escaped in the body and never leak.
PASSWORD = "S3cr3t-P@ss<&>"
PASSWORD_ESCAPED = "S3cr3t-P@ss&lt;&amp;&gt;"
API_URL = "https://testpayment.cmi.co.ma/fim/api"


@pytest.fixture
def config() -> CMIConfig:
    return CMIConfig(
        client_id="600000001",
        store_key="TEST-STORE-KEY",
        api_username="apiuser",
        api_password=PASSWORD,
        http_timeout=7.5,
    )


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(config: CMIConfig, sleeps: list[float]) -> Iterator[CMIClient]:
    with CMIClient(config, retries=2, backoff=0.1, sleep=sleeps.append) as api:
        yield api


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def cc5(
    *,
    response: str = "Approved",
    proc: str = "00",
    order_id: str = "ORDER-1",
    err_msg: str = "",
    extra: dict[str, str] | None = None,
    **fields: str,
) -> str:
    """A ``<CC5Response>`` as CMI sends it."""
    values = {
        "OrderId": order_id,
        "GroupId": fields.pop("GroupId", order_id),
        "Response": response,
        "AuthCode": fields.pop("AuthCode", "P12345" if response == "Approved" else ""),
        "HostRefNum": fields.pop("HostRefNum", "325322002345"),
        "ProcReturnCode": proc,
        "TransId": fields.pop("TransId", "23253WmXE12345"),
        "ErrMsg": err_msg,
        **fields,
    }
    body = "".join(f"<{k}>{_esc(v)}</{k}>" for k, v in values.items())
    extras = {"SETTLEID": "", "TRXDATE": "20230910 22:36:30", **(extra or {})}
    body += "<Extra>" + "".join(f"<{k}>{_esc(v)}</{k}>" for k, v in extras.items()) + "</Extra>"
    return f'<?xml version="1.0" encoding="UTF-8"?><CC5Response>{body}</CC5Response>'


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def reply(
    mocked: responses.RequestsMock, body: str | None = None, status: int = 200, **kw: object
) -> None:
    body = cc5() if body is None else body
    mocked.add(responses.POST, API_URL, body=body, status=status, **kw)  # type: ignore[arg-type]


def sent(mocked: responses.RequestsMock, index: int = 0) -> tuple[bytes, StdET.Element]:
    """The raw body of a request we sent, and its parsed tree (our own XML: stdlib is fine)."""
    body = mocked.calls[index].request.body
    assert isinstance(body, bytes)
    return body, StdET.fromstring(body)  # noqa: S314 - parsing the XML this library built


def elements(root: StdET.Element) -> dict[str, str]:
    return {child.tag: child.text or "" for child in root if child.tag != "Extra"}


# -- requests ----------------------------------------------------------------------------


def test_capture_sends_postauth_without_total(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked)
    client.capture("ORDER-1")
    body, root = sent(mocked)
    assert root.tag == "CC5Request"
    assert list(elements(root)) == ["Name", "Password", "ClientId", "Type", "OrderId"]
    assert elements(root) == {
        "Name": "apiuser",
        "Password": PASSWORD,
        "ClientId": "600000001",
        "Type": "PostAuth",
        "OrderId": "ORDER-1",
    }
    assert root.find("Extra") is None
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?><CC5Request>')
    request = mocked.calls[0].request
    assert request.url == API_URL
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert request.req_kwargs["timeout"] == 7.5  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("amount", "currency", "total"),
    [
        (Decimal("1250.5"), None, "1250.50"),
        (Decimal("100"), None, "100.00"),
        (Decimal("0.01"), "MAD", "0.01"),
        (Decimal("10.5"), "TND", "10.500"),
        (Decimal("1500"), "392", "1500"),
    ],
)
def test_partial_capture_sends_a_formatted_total(
    client: CMIClient,
    mocked: responses.RequestsMock,
    amount: Decimal,
    currency: str | None,
    total: str,
) -> None:
    reply(mocked)
    client.capture("ORDER-1", amount, currency)
    _, root = sent(mocked)
    assert elements(root)["Type"] == "PostAuth"
    assert elements(root)["Total"] == total
    assert "Currency" not in elements(root)


def test_refund_sends_credit_with_total_and_numeric_currency(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked)
    reply(mocked)
    client.refund("ORDER-1", Decimal("99.9"))
    client.refund("ORDER-1", Decimal("12"), "EUR")
    _, first = sent(mocked, 0)
    _, second = sent(mocked, 1)
    assert list(elements(first)) == [
        "Name",
        "Password",
        "ClientId",
        "Type",
        "OrderId",
        "Total",
        "Currency",
    ]
    assert elements(first)["Type"] == "Credit"
    assert (elements(first)["Total"], elements(first)["Currency"]) == ("99.90", "504")
    assert (elements(second)["Total"], elements(second)["Currency"]) == ("12.00", "978")


def test_void_sends_void(client: CMIClient, mocked: responses.RequestsMock) -> None:
    reply(mocked)
    client.void("ORDER-1")
    _, root = sent(mocked)
    assert elements(root)["Type"] == "Void"
    assert "Total" not in elements(root)


def test_values_are_xml_escaped(client: CMIClient, mocked: responses.RequestsMock) -> None:
    oid = "A<&>\"'B"
    reply(mocked, cc5(order_id=oid))
    client.void(oid)
    body, root = sent(mocked)
    assert b"<OrderId>A&lt;&amp;&gt;&quot;&apos;B</OrderId>" in body
    assert f"<Password>{PASSWORD_ESCAPED}</Password>".encode() in body
    assert elements(root)["OrderId"] == oid
    assert elements(root)["Password"] == PASSWORD


def test_non_ascii_order_id_is_sent_as_utf8(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, cc5(order_id="commande-été-٣"))
    client.void("commande-été-٣")
    body, root = sent(mocked)
    assert "<OrderId>commande-été-٣</OrderId>".encode() in body
    assert elements(root)["OrderId"] == "commande-été-٣"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.capture("ORDER-1", 10.5), "amount"),
        (lambda c: c.refund("ORDER-1", Decimal("-1")), "amount"),
        (lambda c: c.refund("ORDER-1", Decimal("1.001")), "amount"),
        (lambda c: c.void(""), "oid"),
        (lambda c: c.void("x" * 65), "oid"),
        (lambda c: c.void("bad\x00oid"), "OrderId"),
        (lambda c: c.refund("ORDER-1", Decimal(1), "XXX"), "currency"),
    ],
)
def test_invalid_input_is_refused_before_any_request(
    client: CMIClient,
    mocked: responses.RequestsMock,
    call: Callable[[CMIClient], object],
    field: str,
) -> None:
    reply(mocked)
    with pytest.raises(ValidationError) as caught:
        call(client)
    assert caught.value.field == field
    assert len(mocked.calls) == 0


def test_missing_api_user_is_a_configuration_error_before_any_request(
    mocked: responses.RequestsMock,
) -> None:
    reply(mocked)
    config = CMIConfig(client_id="600000001", store_key="TEST-STORE-KEY")
    api = CMIClient(config)
    for call in (
        lambda: api.capture("ORDER-1"),
        lambda: api.void("ORDER-1"),
        lambda: api.refund("ORDER-1", Decimal(1)),
        lambda: api.status("ORDER-1"),
        lambda: api.history("ORDER-1"),
    ):
        with pytest.raises(ConfigurationError) as caught:
            call()
        assert caught.value.setting == "api_username"
    assert len(mocked.calls) == 0


# -- approved answers --------------------------------------------------------------------


def test_approved_answer_is_parsed(client: CMIClient, mocked: responses.RequestsMock) -> None:
    reply(
        mocked,
        cc5(
            GroupId="GROUP-9",
            extra={"SETTLEID": "2412", "CARDBRAND": "VISA", "NUMCODE": "00"},
        ),
    )
    result = client.capture("ORDER-1")
    assert result.approved is True
    assert result.operation == "PostAuth"
    assert result.response == "Approved"
    assert result.order_id == "ORDER-1"
    assert result.group_id == "GROUP-9"
    assert result.auth_code == "P12345"
    assert result.host_ref_num == "325322002345"
    assert result.proc_return_code == "00"
    assert result.trans_id == "23253WmXE12345"
    assert result.err_msg == ""
    assert result.error_code == ""
    assert result.settle_id == "2412"
    assert result.trx_date == datetime(2023, 9, 10, 22, 36, 30)  # noqa: DTZ001 - CMI's naive local time
    assert result.extra["CARDBRAND"] == "VISA"
    assert result.extra["NUMCODE"] == "00"
    assert asdict(result)["extra"]["CARDBRAND"] == "VISA"


def test_results_are_frozen(client: CMIClient, mocked: responses.RequestsMock) -> None:
    reply(mocked)
    result = client.void("ORDER-1")
    with pytest.raises(AttributeError):
        result.approved = False  # type: ignore[misc]


# -- refusals ----------------------------------------------------------------------------


def test_void_refused_raises_api_error_with_cmi_details(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(
        mocked,
        cc5(
            response="Error",
            proc="99",
            err_msg="Void: no eligible sale found",
            extra={"ERRORCODE": "CORE-2008"},
        ),
    )
    with pytest.raises(APIError) as caught:
        client.void("ORDER-1")
    error = caught.value
    assert type(error) is APIError
    assert error.response == "Error"
    assert error.proc_return_code == "99"
    assert error.err_msg == "Void: no eligible sale found"
    assert error.error_code == "CORE-2008"
    assert error.retryable is False
    assert str(error) == (
        "CMI refused the void of order ORDER-1: Void: no eligible sale found (CORE-2008)"
    )
    assert len(mocked.calls) == 1


def test_refund_refused_names_the_refund_and_its_code(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(
        mocked,
        cc5(
            response="Declined",
            proc="99",
            err_msg="Credit not possible before end of day",
            extra={"ERRORCODE": "CORE-2508"},
        ),
    )
    with pytest.raises(
        APIError, match=r"^CMI refused the refund of order ORDER-1: .*\(CORE-2508\)$"
    ):
        client.refund("ORDER-1", Decimal("10"))
    assert len(mocked.calls) == 1


def test_declined_without_error_code_names_the_proc_return_code(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, cc5(response="Declined", proc="05", err_msg="Not approved"))
    with pytest.raises(APIError) as caught:
        client.capture("ORDER-1")
    assert str(caught.value) == (
        "CMI refused the capture of order ORDER-1: Not approved (ProcReturnCode 05)"
    )
    assert caught.value.error_code == ""


def test_error_code_at_the_root_is_read_too(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, cc5(response="Error", proc="99", ERRORCODE="CORE-2008"))
    with pytest.raises(APIError) as caught:
        client.void("ORDER-1")
    assert caught.value.error_code == "CORE-2008"


# -- status ------------------------------------------------------------------------------

STATUS_EXTRA = {
    "AUTH_CODE": "P37891",
    "AUTH_DTTM": "2023-09-10 22:36:30.155",
    "CAPTURE_AMT": "101",
    "CAPTURE_DTTM": "2023-09-10 22:40:01.002",
    "CHARGE_TYPE_CD": "S",
    "HOST_REF_NUM": "325322002345",
    "MDSTATUS": "1",
    "NUMCODE": "0",
    "ORD_ID": "ORDER-1",
    "ORIG_TRANS_AMT": "101",
    "PAN": "4000 00** **** 7190",
    "PROC_RET_CD": "00",
    "SETTLEID": "",
    "TRANS_ID": "23253WmXE12345",
    "TRANS_STAT": "C",
    "VOID_DTTM": "",
}


def test_status_query_is_built_and_parsed(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, cc5(err_msg="Record(s) found for ORDER-1", extra=STATUS_EXTRA))
    status = client.status("ORDER-1")

    _, root = sent(mocked)
    assert list(elements(root)) == ["Name", "Password", "ClientId", "OrderId"]
    extra = root.find("Extra")
    assert extra is not None
    assert [(child.tag, child.text) for child in extra] == [("ORDERSTATUS", "QUERY")]

    assert status.order_id == "ORDER-1"
    assert status.state is OrderState.POST
    assert status.trans_stat == "C"
    assert status.charge_type == "S"
    assert status.currency == get_currency("MAD")
    assert status.amount == Decimal("1.01")
    assert status.captured_amount == Decimal("1.01")
    assert status.auth_code == "P37891"
    assert status.host_ref_num == "325322002345"
    assert status.trans_id == "23253WmXE12345"
    assert status.proc_return_code == "00"
    assert status.masked_pan == "4000 00** **** 7190"
    assert status.md_status == "1"
    assert status.auth_time == datetime(2023, 9, 10, 22, 36, 30, 155000)  # noqa: DTZ001
    assert status.capture_time == datetime(2023, 9, 10, 22, 40, 1, 2000)  # noqa: DTZ001
    assert status.void_time is None
    assert status.extra["NUMCODE"] == "0"
    assert status.result.operation == "ORDERSTATUS"


def test_status_amounts_follow_the_currency_minor_units(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, cc5(extra={**STATUS_EXTRA, "ORIG_TRANS_AMT": "10500", "CAPTURE_AMT": "0"}))
    status = client.status("ORDER-1", "TND")
    assert status.amount == Decimal("10.500")
    assert status.captured_amount == Decimal("0.000")
    assert status.state is OrderState.PRE


def test_status_with_unreadable_amount_is_a_transport_error(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, cc5(extra={**STATUS_EXTRA, "CAPTURE_AMT": "1.01"}))
    with pytest.raises(APITransportError, match="CAPTURE_AMT"):
        client.status("ORDER-1")


def test_status_of_an_unknown_order_raises_order_not_found(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, cc5(response="Error", proc="99", err_msg="No record found for ORDER-404"))
    with pytest.raises(OrderNotFoundError) as caught:
        client.status("ORDER-404")
    assert isinstance(caught.value, APIError)
    assert caught.value.proc_return_code == "99"
    assert caught.value.retryable is False
    assert "ORDER-404" in str(caught.value)
    assert len(mocked.calls) == 1  # an answer, not a transport failure: no retry


def test_other_99_errors_are_not_order_not_found(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, cc5(response="Error", proc="99", err_msg="Access denied"))
    with pytest.raises(APIError) as caught:
        client.status("ORDER-1")
    assert type(caught.value) is APIError


@pytest.mark.parametrize(
    ("trans_stat", "charge_type", "captured", "expected"),
    [
        ("A", "S", None, OrderState.PRE),
        ("A", "S", Decimal("0.00"), OrderState.PRE),
        ("A", "S", Decimal("1.01"), OrderState.POST),
        ("C", "S", Decimal("1.01"), OrderState.POST),
        ("S", "S", Decimal("0.50"), OrderState.POST),
        ("C", "C", Decimal("1.01"), OrderState.RFND),
        (" s ", "c", None, OrderState.RFND),
        ("PN", "S", None, OrderState.PENDING),
        ("CNCL", "S", Decimal("0.00"), OrderState.VOID),
        ("V", "S", None, OrderState.VOID),
        ("D", "S", None, OrderState.ERROR),
        ("ERR", "S", None, OrderState.ERROR),
        ("", "", None, OrderState.UNKNOWN),
        ("Z", "S", None, OrderState.UNKNOWN),
    ],
)
def test_order_state_mapping(
    trans_stat: str, charge_type: str, captured: Decimal | None, expected: OrderState
) -> None:
    assert order_state(trans_stat, charge_type, captured) is expected


# -- history -----------------------------------------------------------------------------

TRX = {
    "TRX1": "S\tC\t10000\t10000\t2023-09-10 22:36:30.155\t2023-09-10 22:40:00.000\t\t"
    "325322002345\tP37891\t00\t23253WmXE00001",
    "TRX2": "C\tS\t2550\t2550\t2023-09-11 10:09:00.000\t2023-09-11 10:09:00.000\t\t"
    "325411002399\tP11111\t00\t23254XyZ00002",
    "TRX3": "S\tD\t10000\t0\t2023-09-10 22:30:00.000\t\t\t\t\t51\t23253WmXE00000",
}


def test_history_lines_become_typed_transactions(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, cc5(extra={"TRXCOUNT": "3", **TRX}))
    history = client.history("ORDER-1")

    _, root = sent(mocked)
    extra = root.find("Extra")
    assert extra is not None
    assert [(child.tag, child.text) for child in extra] == [("ORDERHISTORY", "QUERY")]
    assert "Type" not in elements(root)

    assert history.order_id == "ORDER-1"
    assert len(history.transactions) == 3
    first, refund, declined = history.transactions
    assert first.charge_type == "S"
    assert first.trans_stat == "C"
    assert first.state is OrderState.POST
    assert first.amount == Decimal("100.00")
    assert first.captured_amount == Decimal("100.00")
    assert first.auth_time == datetime(2023, 9, 10, 22, 36, 30, 155000)  # noqa: DTZ001
    assert first.capture_time == datetime(2023, 9, 10, 22, 40)  # noqa: DTZ001
    assert first.void_time is None
    assert first.host_ref_num == "325322002345"
    assert first.auth_code == "P37891"
    assert first.proc_return_code == "00"
    assert first.trans_id == "23253WmXE00001"
    assert first.approved is True
    assert first.raw == TRX["TRX1"]

    assert refund.state is OrderState.RFND
    assert refund.amount == Decimal("25.50")

    assert declined.state is OrderState.ERROR
    assert declined.captured_amount == Decimal("0.00")
    assert declined.capture_time is None
    assert declined.auth_code == ""
    assert declined.proc_return_code == "51"
    assert declined.approved is False


def test_history_with_no_transactions(client: CMIClient, mocked: responses.RequestsMock) -> None:
    reply(mocked, cc5(extra={"TRXCOUNT": "0"}))
    assert client.history("ORDER-1").transactions == ()


def test_history_with_missing_lines_is_unreadable(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, cc5(extra={"TRXCOUNT": "3", "TRX1": TRX["TRX1"]}))
    with pytest.raises(APITransportError, match="TRXCOUNT"):
        client.history("ORDER-1")


def test_history_with_an_unreadable_amount(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, cc5(extra={"TRXCOUNT": "1", "TRX1": "S\tC\tabc\t0"}))
    with pytest.raises(APITransportError, match="TRX1 amount"):
        client.history("ORDER-1")


def test_history_of_an_unknown_order(client: CMIClient, mocked: responses.RequestsMock) -> None:
    reply(mocked, cc5(response="Declined", proc="99", err_msg="No record found for ORDER-404"))
    with pytest.raises(OrderNotFoundError):
        client.history("ORDER-404")


# -- unusable answers --------------------------------------------------------------------

HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>Bad Gateway</h1><br></body></html>"
)
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    "<CC5Response><Response>Approved</Response><ErrMsg>&lol3;</ErrMsg></CC5Response>"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    "<CC5Response><Response>Approved</Response><ErrMsg>&xxe;</ErrMsg></CC5Response>"
)
JUST_A_DTD = (
    '<?xml version="1.0"?><!DOCTYPE CC5Response SYSTEM "http://example.invalid/x.dtd">'
    "<CC5Response><Response>Approved</Response></CC5Response>"
)


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        ("<CC5Response><Response>Approved</Response>", "text/xml", "not well-formed XML"),
        ("", "text/xml", "not well-formed XML"),
        (HTML_PAGE, "text/html", "an HTML page instead of XML (text/html)"),
        (HTML_PAGE, "text/xml", "an HTML page instead of XML (text/xml)"),
        ("<html><body>Maintenance</body></html>", "text/xml", "an HTML page instead of XML"),
        ("<body>Maintenance</body>", "text/xml", "unexpected root element <body>"),
        (
            "<CC5Request><Name>x</Name></CC5Request>",
            "text/xml",
            "unexpected root element <CC5Request>",
        ),
        (BILLION_LAUGHS, "text/xml", "DTD or entities, refused"),
        (EXTERNAL_ENTITY, "text/xml", "DTD or entities, refused"),
        (JUST_A_DTD, "text/xml", "DTD or entities, refused"),
    ],
    ids=[
        "truncated",
        "empty",
        "html",
        "html-as-xml",
        "xhtml",
        "other-root",
        "wrong-root",
        "bomb",
        "xxe",
        "dtd",
    ],
)
def test_unusable_answers_to_a_capture_are_transport_errors_sent_once(
    client: CMIClient,
    mocked: responses.RequestsMock,
    body: str,
    content_type: str,
    reason: str,
) -> None:
    reply(mocked, body, content_type=content_type)
    with pytest.raises(APITransportError) as caught:
        client.capture("ORDER-1")
    error = caught.value
    assert reason in str(error)
    assert "outcome is unknown" in str(error)
    assert "check the order's status" in str(error)
    assert error.retryable is False
    assert error.http_status == 200
    assert len(mocked.calls) == 1


def test_a_cc5_answer_mislabelled_as_html_is_still_read(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, cc5(), content_type="text/html;charset=ISO-8859-9")
    assert client.void("ORDER-1").approved is True


def test_entity_declarations_are_refused_by_the_parser(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, BILLION_LAUGHS)
    with pytest.raises(APITransportError) as caught:
        client.void("ORDER-1")
    assert isinstance(caught.value.__cause__, DefusedXmlException)


def test_read_timeout_on_a_capture_is_not_retried(
    client: CMIClient, mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    reply(mocked, body=requests.exceptions.ReadTimeout("read timed out"))  # type: ignore[arg-type]
    with pytest.raises(APITransportError) as caught:
        client.capture("ORDER-1", Decimal("10"))
    error = caught.value
    assert error.retryable is False
    assert str(error) == (
        "no usable answer from CMI to the capture of order ORDER-1: no answer within 7.5s; "
        "the outcome is unknown: check the order's status before trying again"
    )
    assert isinstance(error.__cause__, requests.exceptions.ReadTimeout)
    assert len(mocked.calls) == 1
    assert sleeps == []


def test_connect_timeout_says_nothing_was_sent_and_still_does_not_retry(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, body=requests.exceptions.ConnectTimeout("connect timed out"))  # type: ignore[arg-type]
    with pytest.raises(APITransportError) as caught:
        client.refund("ORDER-1", Decimal("10"))
    assert caught.value.retryable is True
    assert "nothing was sent" in str(caught.value)
    assert len(mocked.calls) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 400, 404])
def test_http_errors_on_money_operations_are_sent_once(
    client: CMIClient, mocked: responses.RequestsMock, status: int
) -> None:
    reply(mocked, "<html>error</html>", status=status)
    for call in (
        lambda: client.capture("ORDER-1"),
        lambda: client.void("ORDER-1"),
        lambda: client.refund("ORDER-1", Decimal(5)),
    ):
        with pytest.raises(APITransportError) as caught:
            call()
        assert caught.value.http_status == status
        assert caught.value.retryable is False
        assert f"HTTP {status}" in str(caught.value)
    assert len(mocked.calls) == 3


# -- retries of the read-only queries ----------------------------------------------------


def test_status_is_retried_after_5xx_then_succeeds(
    client: CMIClient, mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    reply(mocked, "busy", status=503)
    reply(mocked, "<html/>", status=502)
    reply(mocked, cc5(extra=STATUS_EXTRA))
    assert client.status("ORDER-1").state is OrderState.POST
    assert len(mocked.calls) == 3
    assert sleeps == [0.1, 0.2]


def test_status_gives_up_after_the_retries(
    client: CMIClient, mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    for _ in range(4):
        reply(mocked, "busy", status=503)
    with pytest.raises(APITransportError) as caught:
        client.status("ORDER-1")
    assert caught.value.http_status == 503
    assert caught.value.retryable is True
    assert "outcome is unknown" not in str(caught.value)
    assert len(mocked.calls) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ReadTimeout("slow"),
        requests.exceptions.ConnectionError("reset"),
        requests.exceptions.ConnectTimeout("unreachable"),
    ],
    ids=["read-timeout", "connection-error", "connect-timeout"],
)
def test_history_is_retried_after_network_errors(
    client: CMIClient, mocked: responses.RequestsMock, failure: Exception
) -> None:
    reply(mocked, body=failure)  # type: ignore[arg-type]
    reply(mocked, cc5(extra={"TRXCOUNT": "1", "TRX1": TRX["TRX1"]}))
    assert len(client.history("ORDER-1").transactions) == 1
    assert len(mocked.calls) == 2


def test_status_is_retried_after_unreadable_xml(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, HTML_PAGE, content_type="text/html")
    reply(mocked, cc5(extra=STATUS_EXTRA))
    assert client.status("ORDER-1").amount == Decimal("1.01")
    assert len(mocked.calls) == 2


def test_client_errors_are_not_retried(client: CMIClient, mocked: responses.RequestsMock) -> None:
    reply(mocked, "not found", status=404)
    reply(mocked, cc5(extra=STATUS_EXTRA))
    with pytest.raises(APITransportError) as caught:
        client.status("ORDER-1")
    assert caught.value.retryable is False
    assert len(mocked.calls) == 1


def test_refusals_are_not_retried(client: CMIClient, mocked: responses.RequestsMock) -> None:
    reply(mocked, cc5(response="Error", proc="99", err_msg="Access denied"))
    reply(mocked, cc5(extra=STATUS_EXTRA))
    with pytest.raises(APIError):
        client.status("ORDER-1")
    assert len(mocked.calls) == 1


def test_retries_are_configurable(
    config: CMIConfig, mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    for _ in range(3):
        reply(mocked, "busy", status=500)
    api = CMIClient(config, retries=0, sleep=sleeps.append)
    with pytest.raises(APITransportError):
        api.status("ORDER-1")
    assert len(mocked.calls) == 1
    assert sleeps == []
    with pytest.raises(ConfigurationError):
        CMIClient(config, retries=-1)


# -- secrets -----------------------------------------------------------------------------

ERROR_PATHS: dict[str, tuple[Callable[[CMIClient], object], dict[str, object]]] = {
    "declined": (
        lambda c: c.refund("ORDER-1", Decimal(1)),
        {"body": cc5(response="Declined", proc="99", extra={"ERRORCODE": "CORE-2508"})},
    ),
    "not-found": (
        lambda c: c.status("ORDER-1"),
        {"body": cc5(response="Error", proc="99", err_msg="No record found for ORDER-1")},
    ),
    "echoed-password": (
        lambda c: c.capture("ORDER-1"),
        {"body": cc5(response="Error", proc="99", err_msg=f"Bad password {PASSWORD} for apiuser")},
    ),
    "read-timeout": (
        lambda c: c.capture("ORDER-1"),
        {
            "body": requests.exceptions.ReadTimeout(
                "timed out",
                request=requests.Request("POST", API_URL, data=f"<Password>{PASSWORD}").prepare(),
            )
        },
    ),
    "connect-timeout": (
        lambda c: c.void("ORDER-1"),
        {"body": requests.exceptions.ConnectTimeout("timed out")},
    ),
    "connection-error": (
        lambda c: c.status("ORDER-1"),
        {"body": requests.exceptions.ConnectionError("refused")},
    ),
    "http-500": (lambda c: c.capture("ORDER-1"), {"body": "oops", "status": 500}),
    "html": (lambda c: c.history("ORDER-1"), {"body": HTML_PAGE, "content_type": "text/html"}),
    "malformed": (lambda c: c.capture("ORDER-1"), {"body": "<CC5Response><Resp"}),
    "bomb": (lambda c: c.status("ORDER-1"), {"body": BILLION_LAUGHS}),
    "wrong-root": (lambda c: c.void("ORDER-1"), {"body": "<Other/>"}),
}


@pytest.mark.parametrize("path", list(ERROR_PATHS))
def test_the_password_never_appears_in_errors_or_logs(
    client: CMIClient,
    mocked: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
    path: str,
) -> None:
    call, reply_kwargs = ERROR_PATHS[path]
    for _ in range(3):
        mocked.add(responses.POST, API_URL, **reply_kwargs)  # type: ignore[arg-type]
    caplog.set_level(logging.DEBUG)
    with pytest.raises(APIError) as caught:
        call(client)
    error = caught.value
    cause = error.__cause__
    texts = [
        str(error),
        repr(error),
        repr(vars(error)),
        str(cause),
        repr(cause),
        repr(getattr(cause, "request", None)),
        caplog.text,
        repr(client),
    ]
    assert mocked.calls  # the request, password included, was really sent
    for text in texts:
        assert PASSWORD not in text
        assert PASSWORD_ESCAPED not in text
        assert "S3cr3t" not in text
    assert any("ORDER-1" in record.getMessage() for record in caplog.records)


def test_an_echoed_password_is_redacted_from_err_msg(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, cc5(response="Error", proc="99", err_msg=f"Bad password {PASSWORD}"))
    with pytest.raises(APIError) as caught:
        client.void("ORDER-1")
    assert caught.value.err_msg == "Bad password ***"


def test_requests_exception_is_chained_without_the_request(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    # requests attaches the prepared request, whose body holds the password, to its errors.
    prepared = requests.Request("POST", API_URL, data=f"<Password>{PASSWORD}</Password>")
    failure = requests.exceptions.ReadTimeout("slow", request=prepared.prepare())
    assert failure.request is not None
    reply(mocked, body=failure)  # type: ignore[arg-type]
    with pytest.raises(APITransportError) as caught:
        client.void("ORDER-1")
    cause = caught.value.__cause__
    assert isinstance(cause, requests.exceptions.ReadTimeout)
    assert cause.request is None


# -- logging -----------------------------------------------------------------------------


def test_debug_log_names_operation_order_and_outcome(
    client: CMIClient, mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    reply(mocked, cc5(order_id="ORDER-7"))
    reply(mocked, cc5(response="Declined", proc="99", extra={"ERRORCODE": "CORE-2508"}))
    caplog.set_level(logging.DEBUG, logger="cmi_core.api")
    client.capture("ORDER-7")
    with pytest.raises(APIError):
        client.refund("ORDER-8", Decimal(3))
    messages = [r.getMessage() for r in caplog.records if r.name == "cmi_core.api"]
    assert messages == [
        "CMI capture of order ORDER-7: approved (ProcReturnCode 00)",
        "CMI refund of order ORDER-8: Declined (CORE-2508)",
    ]
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "cmi_core.api")


# -- session -----------------------------------------------------------------------------


class RecordingSession(requests.Session):
    closed = False

    def close(self) -> None:
        self.closed = True
        super().close()


def test_a_given_session_is_used_and_left_open(
    config: CMIConfig, mocked: responses.RequestsMock
) -> None:
    reply(mocked)
    session = RecordingSession()
    session.headers["X-Test"] = "yes"
    with CMIClient(config, session) as api:
        api.void("ORDER-1")
    assert mocked.calls[0].request.headers["X-Test"] == "yes"
    assert session.closed is False


def test_an_own_session_is_closed(config: CMIConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[RecordingSession] = []

    def make() -> RecordingSession:
        created.append(RecordingSession())
        return created[-1]

    monkeypatch.setattr(requests, "Session", make)
    with CMIClient(config):
        pass
    assert len(created) == 1
    assert created[0].closed is True


# Review findings: hostile or odd answers from "CMI".


def test_unknown_xml_encoding_is_a_transport_error(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    body = b'<?xml version="1.0" encoding="bogus-xx"?><CC5Response/>'
    mocked.add(responses.POST, API_URL, body=body, content_type="text/xml")
    with pytest.raises(APITransportError):
        client.void("ORDER-1")


def test_password_echoed_in_any_field_is_redacted(
    client: CMIClient, mocked: responses.RequestsMock
) -> None:
    body = cc5(response="Error", proc="99", err_msg="bad", extra={"ERRORCODE": PASSWORD})
    mocked.add(responses.POST, API_URL, body=body, content_type="text/xml")
    with pytest.raises(APIError) as info:
        client.void("ORDER-1")
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in info.value.error_code


def test_callback_dates_with_cmis_five_digit_year() -> None:
    from cmi_core.api import _parse_date

    parsed = _parse_date("23/11/02017 15:57:06")
    assert parsed is not None
    assert (parsed.year, parsed.month, parsed.day, parsed.hour) == (2017, 11, 23, 15)
