"""End to end with the real emulator (``cmi sandbox``) and the app on a live server.

The storefront initializes through Saleor (the stand-in signs the webhooks), the shopper
posts the returned form to the emulator and pays; the emulator's callback reaches the app,
which reports to Saleor; then Saleor asks the app to refund, charge, cancel.

Saleor's books: the stand-in's :meth:`~tests.adapters.saleor.standin.FakeSaleor.amounts`
models ``saleor/payment/transaction_item_calculations.py`` (issue 12): the tests check the
amounts Saleor would show, and the actions the app offers, against what CMI did.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from cmi_django import services
from cmi_django.models import Operation, Payment
from cmi_saleor.models import ChannelConfiguration, EventReport
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from cmi_core.sandbox import DEFAULT_MERCHANT, Sandbox
from cmi_core.testing import make_callback
from tests.adapters.saleor.conftest import send
from tests.adapters.saleor.standin import (
    FakeSaleor,
    action_payload,
    new_transaction,
    session_payload,
)
from tests.sandbox.support import APPROVED_CARD, Browser

pytestmark = pytest.mark.django_db(transaction=True)

INIT = "TRANSACTION_INITIALIZE_SESSION"
PROCESS = "TRANSACTION_PROCESS_SESSION"
DECLINE_CARD = "4000000000000051"
RETURN_URL = "https://shop.example.ma/checkout/return"
CANCEL = "TRANSACTION_CANCELATION_REQUESTED"
ZERO = Decimal(0)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(port=0, callback_timeout=5.0) as running:
        yield running


@pytest.fixture
def app(
    live_server: Any, settings: Any, installation: Any, sandbox: Sandbox
) -> ChannelConfiguration:
    settings.CMI_SALEOR_APP_URL = live_server.url
    return ChannelConfiguration.objects.create(
        installation=installation,
        channel="default-channel",
        client_id=DEFAULT_MERCHANT.client_id,
        store_key=DEFAULT_MERCHANT.store_key,
        api_username=DEFAULT_MERCHANT.api_username,
        api_password=DEFAULT_MERCHANT.api_password,
        base_url=sandbox.base_url,
        capture_mode="auto",
    )


def start(
    client: Client, saleor: FakeSaleor, sandbox: Sandbox
) -> tuple[dict[str, Any], dict[str, Any], Browser]:
    transaction = new_transaction()
    payload = session_payload(INIT, transaction, data={"returnUrl": RETURN_URL})
    answer = send(client, saleor, INIT, payload).json()
    assert answer["result"] == "CHARGE_ACTION_REQUIRED"
    browser = Browser(sandbox)
    page = browser.open(list(answer["data"]["fields"].items()))
    assert page.status_code == 200, page.text[:500]
    assert answer["data"]["action"] == sandbox.gateway_url
    return transaction, answer, browser


def come_back(browser: Browser) -> requests.Response:
    action, fields = browser.return_form()
    return browser.http.post(action, data=fields, timeout=10, allow_redirects=False)


def process(client: Client, saleor: FakeSaleor, transaction: dict[str, Any]) -> dict[str, Any]:
    response = send(client, saleor, PROCESS, session_payload(PROCESS, transaction))
    assert response.status_code == 200
    return response.json()


def storefront_process(
    client: Client, saleor: FakeSaleor, transaction: dict[str, Any]
) -> dict[str, Any]:
    """The storefront's ``transactionProcess`` as Saleor runs it: a final event Saleor
    already stored is answered without asking the app (:meth:`FakeSaleor.processed`)."""
    stored = saleor.processed(transaction["id"])
    if stored is not None:
        return {"result": stored[0], "pspReference": stored[1], "amount": str(stored[2])}
    return process(client, saleor, transaction)


def act(client: Client, saleor: FakeSaleor, event: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = send(client, saleor, event, payload)
    assert response.status_code == 200, response.content
    return response.json()


def test_pay_refund_then_cancel_is_refused(
    client: Client, saleor: FakeSaleor, sandbox: Sandbox, app: ChannelConfiguration
) -> None:
    transaction, answer, browser = start(client, saleor, sandbox)
    oid = answer["data"]["oid"]
    browser.pay(APPROVED_CARD)
    [report] = saleor.reports
    assert report["type"] == "CHARGE_SUCCESS"
    assert report["amount"] == "120.50"
    assert report["paymentMethodDetails"]["card"]["lastDigits"] == "1111"
    assert report["paymentMethodDetails"]["card"]["expYear"] == 2030
    assert sandbox.order(oid).state == "POST"
    back = come_back(browser)
    assert back.status_code == 303
    assert back.headers["Location"].startswith(RETURN_URL + "?transaction=")
    result = process(client, saleor, transaction)
    assert result["result"] == "CHARGE_SUCCESS"
    assert result["pspReference"] == report["pspReference"]

    refund = action_payload(transaction, "REFUND", "20.50")
    answer_refund = act(client, saleor, "TRANSACTION_REFUND_REQUESTED", refund)
    assert answer_refund["result"] == "REFUND_SUCCESS"
    assert answer_refund["amount"] == "20.50"
    assert sandbox.order(oid).state == "RFND"
    # Saleor retries the same request (e.g. after a timeout): CMI is not asked twice
    again = act(client, saleor, "TRANSACTION_REFUND_REQUESTED", refund)
    assert again == answer_refund
    assert Operation.objects.filter(kind="refund", succeeded=True).count() == 1
    assert Payment.objects.get(oid=oid).refunded_amount == Decimal("20.50")
    # no report for what Saleor asked itself: its answer is the record
    assert len(saleor.reports) == 1

    cancel = act(
        client,
        saleor,
        "TRANSACTION_CANCELATION_REQUESTED",
        action_payload(transaction, "CANCEL", "100.00"),
    )
    assert cancel["result"] == "CANCEL_FAILURE"
    assert sandbox.order(oid).state == "RFND"


def test_manual_capture_then_charge_request(
    client: Client, saleor: FakeSaleor, sandbox: Sandbox, app: ChannelConfiguration
) -> None:
    app.capture_mode = "manual"
    app.save()
    transaction = new_transaction()
    payload = session_payload(
        INIT, transaction, data={"returnUrl": RETURN_URL}, action_type="AUTHORIZATION"
    )
    answer = act(client, saleor, INIT, payload)
    assert answer["result"] == "AUTHORIZATION_ACTION_REQUIRED"
    browser = Browser(sandbox)
    browser.open(list(answer["data"]["fields"].items()))
    browser.pay(APPROVED_CARD)
    assert [r["type"] for r in saleor.reports] == ["AUTHORIZATION_SUCCESS"]
    assert sandbox.order(answer["data"]["oid"]).state == "PRE"
    charge = action_payload(transaction, "CHARGE", "100.00")
    result = act(client, saleor, "TRANSACTION_CHARGE_REQUESTED", charge)
    assert result["result"] == "CHARGE_SUCCESS"
    assert result["amount"] == "100.00"
    assert act(client, saleor, "TRANSACTION_CHARGE_REQUESTED", charge) == result
    assert Operation.objects.filter(kind="capture", succeeded=True).count() == 1
    assert sandbox.order(answer["data"]["oid"]).state == "POST"


def test_decline_then_approval(
    client: Client, saleor: FakeSaleor, sandbox: Sandbox, app: ChannelConfiguration
) -> None:
    """A decline while CMI's page stays open is not final: the shopper pays with another
    card, and Saleor's transactionProcess (which answers the first final event it stored)
    must then say CHARGE_SUCCESS, not the earlier decline."""
    transaction, _, browser = start(client, saleor, sandbox)
    browser.pay(DECLINE_CARD)
    assert [r["type"] for r in saleor.reports] == ["INFO"]
    assert "declined" in saleor.reports[0]["message"]
    waiting = storefront_process(client, saleor, transaction)
    assert waiting["result"] == "CHARGE_ACTION_REQUIRED"
    assert "autre carte" in waiting["message"]  # the shopper paid in French (issue 13)
    browser.pay(APPROVED_CARD)
    assert [r["type"] for r in saleor.reports] == ["INFO", "CHARGE_SUCCESS"]
    assert saleor.reports[0]["pspReference"] != saleor.reports[1]["pspReference"]
    assert storefront_process(client, saleor, transaction)["result"] == "CHARGE_SUCCESS"
    assert books(saleor, transaction) == (ZERO, Decimal("120.50"), ZERO, ZERO)


def test_decline_then_fail_url_is_final(
    client: Client, saleor: FakeSaleor, sandbox: Sandbox, app: ChannelConfiguration
) -> None:
    """The shopper gives up and comes back through the failUrl: now the attempt is
    over, Saleor hears CHARGE_FAILURE and transactionProcess answers it."""
    transaction, _, browser = start(client, saleor, sandbox)
    browser.pay(DECLINE_CARD)
    back = come_back(browser)
    assert back.status_code == 303
    assert "cmi=fail" in back.headers["Location"]
    assert [r["type"] for r in saleor.reports] == ["INFO", "CHARGE_FAILURE"]
    assert storefront_process(client, saleor, transaction)["result"] == "CHARGE_FAILURE"
    assert books(saleor, transaction) == (ZERO, ZERO, ZERO, ZERO)


def test_decline_after_the_session_expired_is_final(
    client: Client, saleor: FakeSaleor, sandbox: Sandbox, app: ChannelConfiguration
) -> None:
    """No failUrl (the shopper closed the tab): once CMI's page has expired, the
    process session answers CHARGE_FAILURE."""
    transaction, answer, browser = start(client, saleor, sandbox)
    browser.pay(DECLINE_CARD)
    assert storefront_process(client, saleor, transaction)["result"] == "CHARGE_ACTION_REQUIRED"
    Payment.objects.filter(oid=answer["data"]["oid"]).update(
        updated_at=timezone.now() - timedelta(seconds=2701)
    )
    assert storefront_process(client, saleor, transaction)["result"] == "CHARGE_FAILURE"


def test_duplicate_callback(
    client: Client, saleor: FakeSaleor, sandbox: Sandbox, app: ChannelConfiguration
) -> None:
    _, answer, browser = start(client, saleor, sandbox)
    sandbox.set_fault("twice", oid=answer["data"]["oid"])
    browser.pay(APPROVED_CARD)
    sandbox.wait_for_callbacks()
    assert [r["type"] for r in saleor.reports] == ["CHARGE_SUCCESS"]
    assert Payment.objects.get(oid=answer["data"]["oid"]).state == "captured"
    assert sandbox.order(answer["data"]["oid"]).state == "POST"


@pytest.mark.parametrize("trouble", ["callback_dropped"])
def test_process_session_asks_cmi_when_no_callback_was_recorded(
    client: Client, saleor: FakeSaleor, sandbox: Sandbox, app: ChannelConfiguration, trouble: str
) -> None:
    """No callback recorded (CMI's never came): the process session reads CMI's status,
    captures the authorisation as auto mode says, and answers CHARGE_SUCCESS itself.
    (Saleor refusing the callback's report no longer leaves the callback unrecorded:
    ``test_saleor_down_at_the_callback_hears_of_it_when_it_asks``.)"""
    transaction, answer, browser = start(client, saleor, sandbox)
    oid = answer["data"]["oid"]
    if trouble == "callback_dropped":
        sandbox.set_fault("drop", oid=oid)
    else:
        saleor.report_failure = "http"
    browser.pay(APPROVED_CARD)
    assert sandbox.order(oid).state == "PRE"
    assert Payment.objects.get(oid=oid).state == "redirected"
    saleor.report_failure = None
    result = process(client, saleor, transaction)
    assert result["result"] == "CHARGE_SUCCESS"
    assert result["amount"] == "120.50"
    assert sandbox.order(oid).state == "POST"
    payment = Payment.objects.get(oid=oid)
    # as on the callback path: CMI's TransId (not the oid) and the card (issue 12)
    (status,) = Operation.objects.filter(payment=payment, kind="status")
    assert result["pspReference"] == status.response["trans_id"] != oid
    card = result["paymentMethodDetails"]
    assert (card["type"], card["firstDigits"], card["lastDigits"]) == ("CARD", "4111", "1111")
    assert (payment.state, payment.capture_mode) == ("captured", "manual")
    (capture,) = Operation.objects.filter(payment=payment, kind="capture")
    assert (capture.succeeded, capture.key) == (True, "saleor-process-capture")
    # only the refused report of the callback: the session answer is Saleor's record
    assert len(saleor.reports) == (1 if trouble == "saleor_down" else 0)
    assert saleor.recorded == {}
    # CMI's callback comes late (its TransId need not be ORDERSTATUS's): a duplicate,
    # answered APPROVED, never ACTION=POSTAUTH, and nothing is captured twice.
    late = make_callback(
        DEFAULT_MERCHANT.store_key,
        oid=oid,
        amount=payment.amount,
        trans_id="LATE-TRANS-1",
        request_fields=payment.request_fields,
    )
    reply = client.post(
        "/cmi/callback/", data=urlencode(late), content_type="application/x-www-form-urlencoded"
    )
    assert reply.content == b"APPROVED"
    payment.refresh_from_db()
    assert (payment.state, payment.trans_id) == ("captured", "LATE-TRANS-1")
    assert Operation.objects.filter(payment=payment, kind="capture").count() == 1


def test_saleor_down_at_the_callback_hears_of_it_when_it_asks(
    client: Client, saleor: FakeSaleor, sandbox: Sandbox, app: ChannelConfiguration
) -> None:
    """Issue 16: Saleor cannot record the callback's report. The payment committed first,
    so CMI is answered ACTION=POSTAUTH and captures; the report stays owed and reaches
    Saleor when the storefront's transactionProcess comes, once; Saleor's books and CMI's
    agree, and nothing is captured through the API (before: CMI heard FAILURE and the
    process session had to capture through the API)."""
    transaction, answer, browser = start(client, saleor, sandbox)
    oid = answer["data"]["oid"]
    saleor.report_failure = "http"
    browser.pay(APPROVED_CARD)
    assert sandbox.order(oid).state == "POST"
    payment = Payment.objects.get(oid=oid)
    assert payment.state == "captured"
    (owed,) = EventReport.objects.filter(mapping__oid=oid)
    assert owed.event_type == "CHARGE_SUCCESS"
    assert books(saleor, transaction) == (ZERO, ZERO, ZERO, ZERO)
    saleor.report_failure = None
    result = storefront_process(client, saleor, transaction)
    assert (result["result"], result["pspReference"]) == ("CHARGE_SUCCESS", payment.trans_id)
    assert [r["type"] for r in saleor.reports] == ["CHARGE_SUCCESS", "CHARGE_SUCCESS"]
    assert not EventReport.objects.filter(pk=owed.pk).exists()  # recorded: no longer owed
    assert books(saleor, transaction) == (ZERO, Decimal("120.50"), ZERO, ZERO)
    assert not Operation.objects.filter(payment=payment, kind="capture").exists()
    assert storefront_process(client, saleor, transaction)["result"] == "CHARGE_SUCCESS"
    assert len(saleor.reports) == 2


def test_manifest_from_the_live_server(live_server: Any, app: ChannelConfiguration) -> None:
    manifest = requests.get(f"{live_server.url}/api/manifest", timeout=5).json()
    assert manifest["tokenTargetUrl"] == f"{live_server.url}/api/register"
    assert json.loads(requests.get(f"{live_server.url}/health", timeout=5).text)["status"] == "ok"


def books(saleor: FakeSaleor, transaction: dict[str, Any]) -> tuple[Decimal, ...]:
    """(authorized, charged, refunded, canceled) as Saleor shows them."""
    amounts = saleor.amounts(transaction["id"])
    return tuple(amounts[k] for k in ("authorized", "charged", "refunded", "canceled"))


def test_cancel_after_capture_is_refused_and_not_offered(
    client: Client, saleor: FakeSaleor, sandbox: Sandbox, app: ChannelConfiguration
) -> None:
    """Once money is captured, Saleor may only ask for a refund: a CANCEL_SUCCESS would
    add to Saleor's canceled amount and leave the order charged (FULL) though CMI voided
    the capture and nothing is collected."""
    transaction, answer, browser = start(client, saleor, sandbox)
    oid = answer["data"]["oid"]
    browser.pay(APPROVED_CARD)
    [report] = saleor.reports
    assert report["type"] == "CHARGE_SUCCESS"
    assert report["availableActions"] == ["REFUND"]
    cancel = act(client, saleor, CANCEL, action_payload(transaction, "CANCEL", "0"))
    assert cancel["result"] == "CANCEL_FAILURE"
    assert "remboursé" in cancel["message"]  # French: the payment's language
    assert sandbox.order(oid).state == "POST"  # CMI was not asked to void
    assert books(saleor, transaction) == (ZERO, Decimal("120.50"), ZERO, ZERO)


def test_same_day_void_of_a_capture_is_a_refund_in_saleor(
    client: Client, saleor: FakeSaleor, sandbox: Sandbox, app: ChannelConfiguration
) -> None:
    """Staff void the capture the same day (Django admin, dashboards): nothing is
    collected, so Saleor must show the money refunded, not charged and canceled."""
    transaction, answer, browser = start(client, saleor, sandbox)
    oid = answer["data"]["oid"]
    browser.pay(APPROVED_CARD)
    services.void(Payment.objects.get(oid=oid), user="staff")
    assert sandbox.order(oid).state == "VOID"
    assert [r["type"] for r in saleor.reports] == ["CHARGE_SUCCESS", "REFUND_SUCCESS"]
    assert saleor.reports[1]["amount"] == "120.50"
    assert saleor.reports[1]["availableActions"] == []
    assert books(saleor, transaction) == (ZERO, ZERO, Decimal("120.50"), ZERO)


def test_staff_void_while_saleor_is_down_is_reported_later(
    client: Client, saleor: FakeSaleor, sandbox: Sandbox, app: ChannelConfiguration
) -> None:
    """CMI already voided: the staff action succeeds (before issue 16 Saleor's refusal was
    raised to the caller, though the void stood), the report is owed, and cron's
    ``cmi_saleor_reports`` brings Saleor's books in line, once."""
    transaction, answer, browser = start(client, saleor, sandbox)
    oid = answer["data"]["oid"]
    browser.pay(APPROVED_CARD)
    saleor.report_failure = "http"
    services.void(Payment.objects.get(oid=oid), user="staff")
    assert sandbox.order(oid).state == "VOID"
    assert Payment.objects.get(oid=oid).state == "voided"
    (owed,) = EventReport.objects.filter(mapping__oid=oid)
    assert owed.event_type == "REFUND_SUCCESS"
    assert books(saleor, transaction) == (ZERO, Decimal("120.50"), ZERO, ZERO)
    saleor.report_failure = None
    call_command("cmi_saleor_reports", stdout=io.StringIO())
    call_command("cmi_saleor_reports", stdout=io.StringIO())
    assert [r["type"] for r in saleor.reports] == ["CHARGE_SUCCESS", *["REFUND_SUCCESS"] * 2]
    assert books(saleor, transaction) == (ZERO, ZERO, Decimal("120.50"), ZERO)


def test_partial_capture_releases_the_rest_in_saleor(
    client: Client, saleor: FakeSaleor, sandbox: Sandbox, app: ChannelConfiguration
) -> None:
    """CMI takes one PostAuth per order and lets the rest of the hold go: after capturing
    100.00 of 120.50, Saleor must show nothing left authorized (it could never be
    captured), and the app offers only a refund."""
    app.capture_mode = "manual"
    app.save()
    transaction = new_transaction()
    payload = session_payload(
        INIT, transaction, data={"returnUrl": RETURN_URL}, action_type="AUTHORIZATION"
    )
    answer = act(client, saleor, INIT, payload)
    browser = Browser(sandbox)
    browser.open(list(answer["data"]["fields"].items()))
    browser.pay(APPROVED_CARD)
    assert books(saleor, transaction) == (Decimal("120.50"), ZERO, ZERO, ZERO)
    charge = action_payload(transaction, "CHARGE", "100.00")
    result = act(client, saleor, "TRANSACTION_CHARGE_REQUESTED", charge)
    assert result["result"] == "CHARGE_SUCCESS"
    assert result["actions"] == ["REFUND"]
    assert books(saleor, transaction) == (ZERO, Decimal("100.00"), ZERO, ZERO)
    released = saleor.reports[-1]
    assert (released["type"], released["amount"]) == ("AUTHORIZATION_ADJUSTMENT", "100.00")
    assert released["availableActions"] == ["REFUND"]
    assert "20,50\xa0MAD" in released["message"]  # money, in the payment's French


@pytest.mark.parametrize("case", [("auto", "AUTHORIZATION"), ("manual", "CHARGE")])
def test_saleor_action_type_decides_the_capture(
    client: Client,
    saleor: FakeSaleor,
    sandbox: Sandbox,
    app: ChannelConfiguration,
    case: tuple[str, str],
) -> None:
    """Saleor's ``action.actionType`` (its channel's flow strategy, or the storefront's
    request) wins over the app's channel setting: AUTHORIZATION leaves the money
    authorized in Saleor's books and at CMI, CHARGE captures it."""
    channel_mode, action_type = case
    app.capture_mode = channel_mode
    app.save()
    transaction = new_transaction()
    payload = session_payload(
        INIT, transaction, data={"returnUrl": RETURN_URL}, action_type=action_type
    )
    answer = act(client, saleor, INIT, payload)
    browser = Browser(sandbox)
    browser.open(list(answer["data"]["fields"].items()))
    browser.pay(APPROVED_CARD)
    amount = Decimal("120.50")
    if action_type == "AUTHORIZATION":
        assert sandbox.order(answer["data"]["oid"]).state == "PRE"
        assert books(saleor, transaction) == (amount, ZERO, ZERO, ZERO)
        assert saleor.reports[-1]["availableActions"] == ["CHARGE", "CANCEL"]
    else:
        assert sandbox.order(answer["data"]["oid"]).state == "POST"
        assert books(saleor, transaction) == (ZERO, amount, ZERO, ZERO)
    assert answer["result"] == f"{action_type}_ACTION_REQUIRED"
