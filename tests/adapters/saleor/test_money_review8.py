"""Review 8: the bookkeeping CMI's callback leaves until after its reply
(:mod:`cmi_django.afterreply`), attacked."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from cmi_django import services
from cmi_django.models import Operation, Payment
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.utils import timezone

from cmi_core.sandbox import Sandbox
from tests.adapters.saleor import test_end_to_end as e2e
from tests.adapters.saleor.standin import FakeSaleor
from tests.adapters.saleor.test_end_to_end import app, sandbox  # noqa: F401 - fixtures
from tests.adapters.saleor.test_sessions import callback_for, initialize

pytestmark = pytest.mark.django_db(transaction=True)

_MODULE = "tests.adapters.saleor.test_money_review8"


class ReplacingMiddleware:
    """A shop's middleware that answers with a response of its own (a copy of the view's):
    the view's response is dropped, never closed."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        return HttpResponse(response.content, content_type=response["Content-Type"])


class FailingMiddleware:
    """A shop's middleware that raises once the view answered: Django answers 500 with a
    response of its own, the view's is never closed."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.get_response(request)
        raise RuntimeError("a shop's middleware failed")


@pytest.mark.parametrize("middleware", ["ReplacingMiddleware", "FailingMiddleware"])
def test_a_delivered_report_is_forgotten_when_a_middleware_drops_the_callbacks_response(
    client: Client, saleor: FakeSaleor, channel: Any, settings: Any, middleware: str
) -> None:
    """The delivered report's row was deleted only by the view's own response's close():
    a middleware that replaced that response (or raised, so that Django answered with its
    own) left the row claimed for the whole lease, and every later report for the same
    Saleor transaction made meanwhile stopped behind it, held until the next sweep
    (``cmi_saleor_reports``). The work now runs when the request's final response closes."""
    from cmi_saleor.models import EventReport

    _, answer = initialize(client, saleor)
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{_MODULE}.{middleware}"]
    shop = Client(raise_request_exception=False)
    shop.post(
        "/cmi/callback",
        data=urlencode(callback_for(answer, trans_id="TX-1")),
        content_type="application/x-www-form-urlencoded",
    )
    assert [r["type"] for r in saleor.reports] == ["CHARGE_SUCCESS"]
    assert not EventReport.objects.exists()  # recorded by Saleor: no longer owed


@pytest.mark.usefixtures("app")
def test_transaction_process_captures_within_the_budget_saleor_leaves(
    client: Client,
    saleor: FakeSaleor,
    sandbox: Sandbox,  # noqa: F811 - the fixture
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No callback yet, auto capture, the tasks framework's immediate backend (Django 6's
    default): transactionProcess learns the approval from CMI's status API, and the
    capture task runs inside the call. Only the status call was cut to
    ``CMI_SALEOR_ACTION_WITHIN``; the PostAuth waited the channel's whole deadline, so a
    slow CMI made Saleor give up and book the process call failed (the shopper told the
    payment failed, and paying again) while CMI captured. The capture now gives up by the
    same time: the answer comes in time and says "being checked" (a REQUEST), the capture
    ``unknown`` (never re-sent), the payment flagged for a refresh."""
    settings.CMI_SALEOR_ACTION_WITHIN = 1
    transaction, answer, browser = e2e.start(client, saleor, sandbox)
    oid = answer["data"]["oid"]
    sandbox.set_fault("drop", oid=oid)  # CMI's callback never comes
    browser.pay(e2e.APPROVED_CARD)
    handle = sandbox.api.handle
    captured_by_cmi = threading.Event()

    def slow_capture(body: bytes, content_type: str) -> bytes:
        if b"PostAuth" not in body:
            return handle(body, content_type)
        time.sleep(4)
        try:
            return handle(body, content_type)
        finally:
            captured_by_cmi.set()

    monkeypatch.setattr(sandbox.api, "handle", slow_capture)
    started = time.monotonic()
    result = e2e.process(client, saleor, transaction)
    took = time.monotonic() - started
    assert not captured_by_cmi.is_set()  # Saleor had its answer before CMI answered
    assert took < 3.5, took
    assert result["result"].endswith("_REQUEST"), result  # pending, neither paid nor failed
    payment = Payment.objects.get(oid=oid)
    (capture,) = Operation.objects.filter(payment=payment, kind="capture")
    assert capture.state == Operation.UNKNOWN  # given up, never sent again
    assert payment.state == "needs_attention"
    assert "did not answer the automatic capture" in payment.attention_reason
    assert captured_by_cmi.wait(10)
    assert sandbox.order(oid).state == "POST"  # CMI did capture: "failed" would have lied
    # staff refresh once the capture's own deadline is over: CMI's history settles it,
    # and Saleor hears the authorisation and the charge, once each
    Operation.objects.filter(pk=capture.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    services.refresh(payment, user="staff")
    capture.refresh_from_db()
    assert capture.state == Operation.SUCCEEDED
    assert Payment.objects.get(oid=oid).state == "captured"
    assert [r["type"] for r in saleor.reports] == ["AUTHORIZATION_SUCCESS", "CHARGE_SUCCESS"]
    assert e2e.books(saleor, transaction)[:2] == (0, payment.amount)  # authorized, charged


def test_under_asgi_the_delivered_report_is_forgotten_once_the_reply_is_sent(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    """Django's ASGI handler closes the response after its last body message: the work
    waits for the reply there too (checked against the handler itself, not the test
    client), and runs once it is sent."""
    import asyncio

    from cmi_saleor.models import EventReport
    from django.core.handlers.asgi import ASGIHandler

    _, answer = initialize(client, saleor)
    body = urlencode(callback_for(answer, trans_id="TX-1")).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/cmi/callback",
        "raw_path": b"/cmi/callback",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("192.0.2.1", 4000),
        "server": ("testserver", 443),
    }
    sent: list[dict[str, Any]] = []
    owed_when_sent: list[bool] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # CMI keeps the connection until it has the reply
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            exists = EventReport.objects.exists
            owed_when_sent.append(await asyncio.to_thread(exists))

    # a loop of its own in a thread of its own, as a server runs it (an earlier test, the
    # browser's, may leave an event loop running in this thread)
    failed: list[BaseException] = []

    def serve() -> None:
        try:
            asyncio.run(ASGIHandler()(scope, receive, send))
        except BaseException as exc:  # noqa: BLE001 - raised again below, in the test
            failed.append(exc)

    server = threading.Thread(target=serve)
    server.start()
    server.join(60)
    if failed:
        raise failed[0]
    assert b"".join(m.get("body", b"") for m in sent) == b"ACTION=POSTAUTH"
    assert [r["type"] for r in saleor.reports] == ["CHARGE_SUCCESS"]
    assert owed_when_sent == [True]  # the row still there when the reply went out
    assert not EventReport.objects.exists()  # and deleted once it was sent
