"""The same callback from many threads at once: one change, one hook call, same replies.

Real row locks need PostgreSQL (SQLite serialises whole-database writes and Django's
test database in memory is not shared safely between threads): these run in dev.py's
PostgreSQL pass.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from cmi_django.models import CallbackLog, Payment
from django.db import connection
from django.test import Client

from cmi_core import PaymentState
from cmi_core.testing import tamper
from tests.adapters.django.testapp.models import HookCall

from .conftest import AMOUNT, callback_for, post_callback, postgres_only

THREADS = 20

pytestmark = [pytest.mark.postgres, postgres_only, pytest.mark.django_db(transaction=True)]


def send_together(fields: dict[str, str]) -> list[bytes]:
    """POST ``fields`` to the callback URL from THREADS threads released together."""
    barrier = threading.Barrier(THREADS)
    replies: list[bytes] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            client = Client()
            barrier.wait(timeout=30)
            response = post_callback(client, fields)
            with lock:
                replies.append(response.content if response.status_code == 200 else b"HTTP")
        except BaseException as exc:  # noqa: BLE001 - handed to the test, which fails on it
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return replies


def test_twenty_identical_callbacks_capture_once(make_payment: Callable[..., Any]) -> None:
    payment: Payment = make_payment()
    replies = send_together(callback_for(payment, trans_id="T-RACE"))
    assert replies == [b"ACTION=POSTAUTH"] * THREADS
    saved = Payment.objects.get(pk=payment.pk)
    assert (saved.state, saved.captured_amount) == (PaymentState.CAPTURED, AMOUNT)
    methods = sorted(HookCall.objects.filter(oid=payment.oid).values_list("method", flat=True))
    assert methods == ["authorised", "captured"]
    outcomes = list(CallbackLog.objects.filter(payment=payment).values_list("outcome", flat=True))
    assert sorted(outcomes) == ["capture"] + ["duplicate"] * (THREADS - 1)


def test_twenty_tampered_callbacks_change_nothing(make_payment: Callable[..., Any]) -> None:
    payment: Payment = make_payment()
    replies = send_together(tamper(callback_for(payment), amount="1.00"))
    assert replies == [b"FAILURE"] * THREADS
    saved = Payment.objects.get(pk=payment.pk)
    assert (saved.state, saved.authorised_amount) == (PaymentState.REDIRECTED, 0)
    assert not HookCall.objects.filter(oid=payment.oid).exists()
    assert CallbackLog.objects.filter(payment=payment, verified=False).count() == THREADS
