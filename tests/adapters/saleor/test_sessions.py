"""Sessions and CMI's callback: what the storefront gets, what Saleor is told, what CMI hears."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from cmi_django.models import CallbackLog, Payment
from cmi_saleor.models import EventReport, TransactionMap
from django.test import Client

from cmi_core import compute_hash
from cmi_core.sandbox import DEFAULT_MERCHANT
from cmi_core.testing import make_callback
from tests.adapters.saleor.conftest import send
from tests.adapters.saleor.standin import (
    FakeSaleor,
    checkout,
    graphql_errors,
    new_transaction,
    session_payload,
)

# Transactions commit as in production: the reports to Saleor go out after the commit
# (transaction.on_commit), which a test's enclosing, rolled-back transaction never reaches.
pytestmark = pytest.mark.django_db(transaction=True)

INIT = "TRANSACTION_INITIALIZE_SESSION"
PROCESS = "TRANSACTION_PROCESS_SESSION"
RETURN_URL = "https://shop.example.ma/checkout/return?step=pay"


def initialize(client: Client, saleor: FakeSaleor, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    transaction = new_transaction()
    kwargs.setdefault("data", {"returnUrl": RETURN_URL})
    response = send(client, saleor, INIT, session_payload(INIT, transaction, **kwargs))
    assert response.status_code == 200
    return transaction, response.json()


def post_callback(client: Client, fields: dict[str, str]) -> str:
    response = client.post(
        "/cmi/callback", data=urlencode(fields), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    return response.content.decode()


def callback_for(answer: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    fields = answer["data"]["fields"]
    return make_callback(
        DEFAULT_MERCHANT.store_key,
        oid=fields["oid"],
        amount=Decimal(fields["amount"]),
        request_fields=fields,
        **kwargs,
    )


def test_gateway_initialize_describes_cmi_for_the_channel(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    event = "PAYMENT_GATEWAY_INITIALIZE_SESSION"
    payload = {
        "recipient": {"id": saleor.app_id},
        "data": None,
        "amount": 120.5,
        "sourceObject": checkout(),
    }
    answer = send(client, saleor, event, payload).json()
    assert answer["data"]["available"] is True
    # capture follows each payment's actionType: the channel's mode is no promise
    assert "captureMode" not in answer["data"]
    assert answer["data"]["capture"]["decidedBy"] == "action.actionType"
    assert answer["data"]["capture"]["withoutActionType"] == "auto"
    payload["sourceObject"] = checkout("other-channel")
    assert send(client, saleor, event, payload).json()["data"]["available"] is False


def test_initialize_returns_the_signed_cmi_form(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    transaction, answer = initialize(client, saleor)
    assert answer["result"] == "CHARGE_ACTION_REQUIRED"
    assert answer["amount"] == "120.50"
    data = answer["data"]
    assert data["action"] == "https://testpayment.cmi.co.ma/fim/est3dgate"
    assert data["transactionId"] == transaction["id"]
    fields = data["fields"]
    unsigned = {k: v for k, v in fields.items() if k != "hash"}
    assert fields["hash"] == compute_hash(unsigned, DEFAULT_MERCHANT.store_key)
    assert fields["amount"] == "120.50"
    assert fields["currency"] == "504"
    assert fields["email"] == "amina@example.ma"
    assert fields["BillToName"] == "Amina Test"
    assert fields["BillToCountry"] == "504"
    assert fields["BillToCity"] == "RABAT"
    assert fields["qty1"] == "2"
    assert fields["productcode1"] == "TEA-1"
    assert fields["okUrl"] == "https://cmi-app.example.ma/cmi/ok"
    assert fields["failUrl"] == "https://cmi-app.example.ma/cmi/fail"
    assert fields["CallbackURL"] == "https://cmi-app.example.ma/cmi/callback"
    assert len(fields["oid"]) <= 64
    mapping = TransactionMap.objects.get(oid=fields["oid"])
    assert mapping.transaction_id == transaction["id"]
    assert mapping.return_url == RETURN_URL
    payment = mapping.payment
    assert (payment.platform, payment.reference) == ("saleor", transaction["id"])
    assert payment.config_key == channel.config_key


def test_manual_capture_asks_for_authorization(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    """Saleor's actionType decides; without one, the channel's capture mode."""
    _, answer = initialize(client, saleor, action_type="AUTHORIZATION")
    assert answer["result"] == "AUTHORIZATION_ACTION_REQUIRED"
    assert Payment.objects.get().capture_mode == "manual"
    channel.capture_mode = "manual"
    channel.save()
    payload = session_payload(INIT, new_transaction(), data={"returnUrl": RETURN_URL})
    del payload["action"]["actionType"]
    assert send(client, saleor, INIT, payload).json()["result"] == "AUTHORIZATION_ACTION_REQUIRED"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data": None}, "returnUrl"),
        ({"data": {"returnUrl": "javascript:alert(1)"}}, "returnUrl"),
        ({"currency": "XYZ"}, "CMI cannot take"),
        ({"source": checkout(email=None)}, "CMI cannot take"),
        ({"channel": "unconfigured"}, "not configured"),
    ],
)
def test_initialize_failures_are_business_failures(
    client: Client, saleor: FakeSaleor, channel: Any, kwargs: dict[str, Any], message: str
) -> None:
    _, answer = initialize(client, saleor, **kwargs)
    assert answer["result"] == "CHARGE_FAILURE"
    assert message in answer["message"]
    assert not Payment.objects.exists()


def test_return_url_hosts_can_be_restricted(
    client: Client, saleor: FakeSaleor, channel: Any, settings: Any
) -> None:
    settings.CMI_SALEOR_ALLOWED_RETURN_HOSTS = ["store.example.ma"]
    _, answer = initialize(client, saleor)
    assert answer["result"] == "CHARGE_FAILURE"
    settings.CMI_SALEOR_ALLOWED_RETURN_HOSTS = ["shop.example.ma"]
    assert initialize(client, saleor)[1]["result"] == "CHARGE_ACTION_REQUIRED"


def test_approved_callback_is_reported_then_captured(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    transaction, answer = initialize(client, saleor)
    reply = post_callback(client, callback_for(answer, trans_id="TX-1"))
    assert reply == "ACTION=POSTAUTH"
    [report] = saleor.reports
    assert report["id"] == transaction["id"]
    assert report["type"] == "CHARGE_SUCCESS"
    assert report["amount"] == "120.50"
    assert report["pspReference"] == "TX-1"
    assert report["availableActions"] == ["REFUND"]  # captured: only a refund (issue 12)
    card = report["paymentMethodDetails"]["card"]
    assert (card["brand"], card["firstDigits"], card["lastDigits"]) == ("visa", "4000", "7190")
    assert all(not c.errors for c in saleor.calls)
    payment = Payment.objects.get()
    assert payment.state == "captured"
    # the storefront comes back and asks
    process = send(client, saleor, PROCESS, session_payload(PROCESS, transaction)).json()
    assert process["result"] == "CHARGE_SUCCESS"
    assert process["pspReference"] == "TX-1"
    assert process["amount"] == "120.50"


def test_manual_mode_reports_an_authorization(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    transaction, answer = initialize(client, saleor, action_type="AUTHORIZATION")
    assert post_callback(client, callback_for(answer, trans_id="TX-2")) == "APPROVED"
    [report] = saleor.reports
    assert report["type"] == "AUTHORIZATION_SUCCESS"
    assert report["availableActions"] == ["CHARGE", "CANCEL"]
    process = send(client, saleor, PROCESS, session_payload(PROCESS, transaction)).json()
    assert process["result"] == "AUTHORIZATION_SUCCESS"


@pytest.mark.parametrize("failure", ["errors", "http"])
def test_a_report_saleor_does_not_record_stays_owed_and_goes_out_once(
    client: Client, saleor: FakeSaleor, channel: Any, failure: str
) -> None:
    """Issue 16: the payment commits first and CMI gets the answer it decided; a report
    Saleor did not record stays owed and goes out later, once. (Before, the report was
    sent inside the callback's transaction: a refusal rolled the payment back and CMI
    heard FAILURE, and meanwhile every other writer waited for Saleor's answer.)"""
    transaction, answer = initialize(client, saleor)
    saleor.report_failure = failure
    assert post_callback(client, callback_for(answer, trans_id="TX-7")) == "ACTION=POSTAUTH"
    assert Payment.objects.get().state == "captured"
    assert CallbackLog.objects.get().reply == "ACTION=POSTAUTH"
    owed = EventReport.objects.get()
    assert (owed.event_type, owed.claimed_until) == ("CHARGE_SUCCESS", None)
    assert owed.attempts == 1
    assert owed.last_error
    assert saleor.amounts(transaction["id"])["charged"] == 0  # Saleor knows nothing yet
    # Saleor is back; the storefront's transactionProcess: the owed report goes out first
    saleor.report_failure = None
    process = send(client, saleor, PROCESS, session_payload(PROCESS, transaction)).json()
    assert (process["result"], process["pspReference"]) == ("CHARGE_SUCCESS", "TX-7")
    assert [(r["type"], r["pspReference"]) for r in saleor.reports] == [
        ("CHARGE_SUCCESS", "TX-7")
    ] * 2  # the refused one, then the one Saleor recorded
    assert not EventReport.objects.exists()  # recorded: no longer owed
    assert saleor.amounts(transaction["id"])["charged"] == Decimal("120.50")
    # asked again: nothing is owed, nothing is sent again
    send(client, saleor, PROCESS, session_payload(PROCESS, transaction))
    assert len(saleor.reports) == 2


@pytest.mark.parametrize("failure", ["exists", None])
def test_already_recorded_counts_as_recorded(
    client: Client, saleor: FakeSaleor, channel: Any, failure: str | None
) -> None:
    transaction, answer = initialize(client, saleor)
    saleor.report_failure = failure
    if failure is None:  # Saleor already has this very event: alreadyProcessed
        saleor.recorded[("CHARGE_SUCCESS", "TX-9", "120.50", transaction["id"])] = "ev"
    assert post_callback(client, callback_for(answer, trans_id="TX-9")) == "ACTION=POSTAUTH"


def test_duplicate_callback_reports_once(client: Client, saleor: FakeSaleor, channel: Any) -> None:
    _, answer = initialize(client, saleor)
    fields = callback_for(answer, trans_id="TX-3")
    assert post_callback(client, fields) == "ACTION=POSTAUTH"
    assert post_callback(client, fields) == "ACTION=POSTAUTH"
    assert len(saleor.reports) == 1


def test_decline_then_approval(client: Client, saleor: FakeSaleor, channel: Any) -> None:
    _, answer = initialize(client, saleor)
    declined = callback_for(answer, approved=False, trans_id="TX-D", err_code="ISO8583-05")
    assert post_callback(client, declined) == "APPROVED"
    assert post_callback(client, callback_for(answer, trans_id="TX-A")) == "ACTION=POSTAUTH"
    types = [(r["type"], r["pspReference"]) for r in saleor.reports]
    # an intermediate decline is INFO: CMI's page stayed open (issue 12)
    assert types == [("INFO", "TX-D"), ("CHARGE_SUCCESS", "TX-A")]
    assert saleor.reports[0]["amount"] == "120.50"
    assert "ISO8583-05" in saleor.reports[0]["message"]


def test_forged_callback_changes_nothing(client: Client, saleor: FakeSaleor, channel: Any) -> None:
    _, answer = initialize(client, saleor)
    fields = callback_for(answer)
    fields["amount"] = "1.00"
    assert post_callback(client, fields) == "FAILURE"
    assert saleor.reports == []
    assert Payment.objects.get().state == "redirected"


def test_process_before_any_callback_is_pending(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    transaction, _ = initialize(client, saleor)
    answer = send(client, saleor, PROCESS, session_payload(PROCESS, transaction)).json()
    assert answer["result"] == "CHARGE_ACTION_REQUIRED"
    unknown = send(client, saleor, PROCESS, session_payload(PROCESS, new_transaction())).json()
    assert unknown["result"] == "CHARGE_FAILURE"


@pytest.mark.parametrize(("kind", "approved"), [("ok", True), ("fail", False)])
def test_shopper_returns_are_sent_to_the_storefront(
    client: Client, saleor: FakeSaleor, channel: Any, kind: str, approved: bool
) -> None:
    transaction, answer = initialize(client, saleor)
    fields = callback_for(answer, approved=approved)
    response = client.post(
        f"/cmi/{kind}", data=urlencode(fields), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 303
    location = urlsplit(response["Location"])
    assert location.netloc == "shop.example.ma"
    query = parse_qs(location.query)
    assert query["transaction"] == [transaction["id"]]
    assert query["step"] == ["pay"]
    assert query["cmi"] == [kind]


def test_unverified_return_is_not_redirected(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    _, answer = initialize(client, saleor)
    fields = callback_for(answer)
    # another first character (a hash already starting with "x", 1 in 64, stayed intact)
    fields["HASH"] = ("y" if fields["HASH"].startswith("x") else "x") + fields["HASH"][1:]
    response = client.post(
        "/cmi/ok", data=urlencode(fields), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert client.get("/cmi/ok").status_code == 405


@pytest.mark.parametrize(
    "body",
    [
        b"oid=1&oid=2",
        b"oid=\xff\xfe",
        b"a=" + b"x" * 70_000,
        b"&".join(b"f%d=1" % i for i in range(600)),
    ],
    ids=["duplicate field", "not UTF-8", "huge", "too many fields"],
)
@pytest.mark.parametrize("kind", ["ok", "fail"])
def test_unreadable_return_bodies_are_refused_not_crashed(
    client: Client, body: bytes, kind: str
) -> None:
    response = client.post(
        f"/cmi/{kind}", data=body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400


def test_every_document_sent_to_saleor_is_valid() -> None:
    from cmi_saleor.graphql import APP_ID_QUERY, TRANSACTION_EVENT_REPORT

    assert graphql_errors(APP_ID_QUERY) == []
    assert graphql_errors(TRANSACTION_EVENT_REPORT) == []
