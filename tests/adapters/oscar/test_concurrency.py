"""Concurrent callbacks on PostgreSQL: row locks make the effects happen exactly once.

A live server (threaded, one database connection per request) receives the callbacks
from 20 threads released at the same instant, as CMI's retries and a proxy's duplicates
can arrive. SQLite serialises writers on its own and cannot show this: these tests run
in ``dev.py``'s PostgreSQL pass.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests
from cmi_django.models import CallbackLog, Payment
from oscar.core.loading import get_model

from tests.adapters.oscar.conftest import postgres_only
from tests.adapters.oscar.support import callback_for, place_order, start_payment

Order = get_model("order", "Order")
PaymentEvent = get_model("order", "PaymentEvent")

pytestmark = [postgres_only, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 20


def all_at_once(url: str, bodies: list[dict[str, str]]) -> list[tuple[int, str]]:
    """POST each body from its own thread, all released together; (status, text) each."""
    barrier = threading.Barrier(len(bodies))
    results: list[tuple[int, str]] = [(0, "")] * len(bodies)

    def send(index: int) -> None:
        with requests.Session() as http:
            barrier.wait()
            response = http.post(url, data=bodies[index], timeout=30)
            results[index] = (response.status_code, response.text)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_same_approval_twenty_times_at_once(live_server: Any, shopper: Any, product: Any) -> None:
    payment, fields = start_payment(shopper, product)
    callback = callback_for(payment, request_fields=fields)
    results = all_at_once(f"{live_server.url}/cmi/callback/", [callback] * THREADS)
    assert results == [(200, "ACTION=POSTAUTH")] * THREADS
    order = Order.objects.get()
    source = order.sources.get()
    assert source.amount_debited == payment.amount
    assert source.transactions.filter(txn_type="Debit").count() == 1
    assert PaymentEvent.objects.filter(event_type__name="Paid").count() == 1
    payment.refresh_from_db()
    assert (payment.state, payment.captured_amount) == ("captured", payment.amount)
    assert CallbackLog.objects.filter(kind="callback").count() == THREADS


@pytest.mark.parametrize("numbers", ["oscar", "own"], ids=["same-number", "own-generator"])
def test_two_attempts_approved_at_once_place_one_order(
    live_server: Any,
    shopper: Any,
    product: Any,
    numbers: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if numbers == "own":  # a shop's OrderNumberGenerator: each attempt its own number
        from oscar.apps.order.utils import OrderNumberGenerator

        fresh = iter(["700001", "700002"])
        monkeypatch.setattr(OrderNumberGenerator, "order_number", lambda self, basket: next(fresh))
    first, _ = start_payment(shopper, product)
    # The shopper came back and started a second attempt on the same basket.
    get_model("basket", "Basket").objects.filter(pk=first.data["basket_id"]).update(status="Open")
    assert place_order(shopper).status_code == 200
    second = Payment.objects.exclude(pk=first.pk).get()
    bodies = [callback_for(first, trans_id="T-1"), callback_for(second, trans_id="T-2")]
    replies = sorted(text for _, text in all_at_once(f"{live_server.url}/cmi/callback/", bodies))
    assert replies == ["ACTION=POSTAUTH", "FAILURE"]  # the second payment is not captured
    assert Order.objects.count() == 1
    assert Order.objects.get().sources.count() == 1


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda cb: {**cb, "amount": "1.00"}, id="tampered-amount"),
        pytest.param(lambda cb: {**cb, "HASH": "A" * 88}, id="forged-hash"),
    ],
)
def test_tampered_callbacks_at_once_place_no_order(
    live_server: Any, shopper: Any, product: Any, forge: Callable[[dict[str, str]], dict[str, str]]
) -> None:
    payment, _ = start_payment(shopper, product)
    results = all_at_once(
        f"{live_server.url}/cmi/callback/", [forge(callback_for(payment))] * THREADS
    )
    assert results == [(200, "FAILURE")] * THREADS
    assert not Order.objects.exists()
    payment.refresh_from_db()
    assert payment.state == "redirected"
