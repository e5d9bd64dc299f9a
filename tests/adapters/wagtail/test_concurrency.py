"""Duplicate callbacks racing through the Wagtail site's URLs: one capture, one receipt.

Real row locks need PostgreSQL (SQLite serialises writes and its in-memory test database
is not shared safely between threads): these run in dev.py's PostgreSQL pass.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from cmi_django import signals
from cmi_django.models import CallbackLog, Payment
from cmi_wagtail.models import CMISettings, PaymentPage
from django.core import mail
from django.db import connection
from django.test import Client

from cmi_core import PaymentState
from cmi_core.testing import make_callback

from .conftest import STORE_KEY, postgres_only, redirect_fields

THREADS = 20

pytestmark = [pytest.mark.postgres, postgres_only, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def captured_signals() -> Iterator[list[Any]]:
    calls: list[Any] = []
    lock = threading.Lock()

    def receiver(sender: Any, **kwargs: Any) -> None:
        with lock:
            calls.append(kwargs["payment"].oid)

    signals.payment_captured.connect(receiver, weak=False)
    yield calls
    signals.payment_captured.disconnect(receiver)


def together(posts: list[tuple[str, dict[str, str]]]) -> list[tuple[str, int, bytes]]:
    """Each (path, fields) POSTed from its own thread, all released at once."""
    barrier = threading.Barrier(len(posts))
    answers: list[tuple[str, int, bytes]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(path: str, fields: dict[str, str]) -> None:
        try:
            client = Client()
            barrier.wait(timeout=30)
            response = client.post(
                path, data=urlencode(fields), content_type="application/x-www-form-urlencoded"
            )
            with lock:
                answers.append((path, response.status_code, response.content))
        except BaseException as exc:  # noqa: BLE001 - handed to the test, which fails on it
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=post) for post in posts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return answers


def start(pay_page: PaymentPage) -> tuple[Payment, dict[str, str]]:
    response = Client().post(pay_page.url, {"name": "Amina", "email": "amina@example.ma"})
    _, fields = redirect_fields(response.content.decode())
    values = dict(fields)
    return Payment.objects.get(oid=values["oid"]), values


def test_twenty_duplicate_callbacks_capture_once(
    pay_page: PaymentPage,
    cmi_settings: CMISettings,
    captured_signals: list[Any],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    cmi_settings.send_receipts = True
    cmi_settings.save()
    payment, request_fields = start(pay_page)
    callback = make_callback(
        STORE_KEY, oid=payment.oid, amount=payment.amount, request_fields=request_fields
    )
    answers = together([("/cmi/callback/", callback)] * THREADS)
    assert [(status, body) for _, status, body in answers] == [(200, b"ACTION=POSTAUTH")] * THREADS
    saved = Payment.objects.get(pk=payment.pk)
    assert saved.state == PaymentState.CAPTURED.value
    assert saved.captured_amount == payment.amount
    assert captured_signals == [payment.oid]
    assert len(mail.outbox) == 1  # one receipt, sent after the one commit that authorised
    assert CallbackLog.objects.filter(payment=payment, kind="callback").count() == THREADS


def test_callbacks_racing_the_ok_return(pay_page: PaymentPage, cmi_settings: CMISettings) -> None:
    cmi_settings.api_username = cmi_settings.api_password = ""  # no capture through the API
    cmi_settings.save()
    authorised: list[str] = []
    lock = threading.Lock()

    def receiver(sender: Any, **kwargs: Any) -> None:
        with lock:
            authorised.append(kwargs["payment"].oid)

    signals.payment_authorised.connect(receiver, weak=False)
    try:
        payment, request_fields = start(pay_page)
        callback = make_callback(
            STORE_KEY, oid=payment.oid, amount=payment.amount, request_fields=request_fields
        )
        answers = together([("/cmi/callback/", callback)] * 10 + [("/cmi/ok/", callback)] * 10)
    finally:
        signals.payment_authorised.disconnect(receiver)
    assert sorted(status for _, status, _ in answers) == [200] * 10 + [303] * 10
    assert authorised == [payment.oid]  # one authorisation, whoever came first
    saved = Payment.objects.get(pk=payment.pk)
    assert PaymentState(saved.state).is_paid
    assert CallbackLog.objects.filter(payment=payment, kind="ok", verified=True).count() == 10
