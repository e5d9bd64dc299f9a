"""Oscar's callbacks with their statements prepared (:mod:`cmi_django.statements`): the
hook places the order with many ORM statements between the locked read and the held
writes (which those statements send mid-transaction). Behind a pooler in transaction
mode too (:mod:`tests.adapters.pooler`)."""

from __future__ import annotations

from typing import Any

import pytest
from cmi_django.models import CallbackLog, Payment
from django.db import connection
from django.test import Client
from oscar.core.loading import get_model

from cmi_core import PaymentState
from tests.adapters.dbsettings import prepared_statements
from tests.adapters.oscar.support import (
    callback_for,
    create_country,
    create_product,
    post_form,
    start_payment,
)
from tests.adapters.pooler import pooled
from tests.adapters.recorded import round_trips

Order = get_model("order", "Order")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql" or prepared_statements(),
        reason="PostgreSQL with Django's default client-side binding",
    ),
]


def _approved(product: Any, client: Client) -> tuple[Payment, list[str]]:
    payment, fields = start_payment(Client(), product)
    callback = callback_for(payment, request_fields=fields)
    replies: list[bytes] = []
    sent = round_trips(
        lambda: replies.append(post_form(client, "/cmi/callback/", callback).content)
    )
    assert replies == [b"ACTION=POSTAUTH"], sent
    return payment, sent


@pytest.fixture
def product(db: None) -> Any:
    create_country()
    return create_product(stock=100)


@pytest.mark.parametrize("behind_a_pooler", [False, True])
def test_prepared_every_order_is_placed_once(
    product: Any, client: Client, behind_a_pooler: bool
) -> None:
    """Twelve approved callbacks on one connection (the third on run prepared), then on
    another: each order placed once, paid, each payment captured and logged once."""
    payments: list[Payment] = []
    prepared = 0
    with pooled(connection) if behind_a_pooler else _nothing() as pooler:
        if pooler is not None:
            pooler.switching = 0.01
        for number in range(12):
            if number == 6:
                connection.close()
            payment, sent = _approved(product, client)
            payments.append(payment)
            prepared += sent[0].startswith("BEGIN; EXECUTE cmi_") and sent[1] != "ROLLBACK"
    assert prepared >= (4 if behind_a_pooler else 8)
    for payment in payments:
        payment.refresh_from_db()
        assert payment.state == PaymentState.CAPTURED
        order = Order.objects.get(number=payment.reference)
        source = order.sources.get()
        assert source.amount_debited == payment.amount
        assert CallbackLog.objects.filter(payment=payment, outcome="capture").count() == 1
    assert Order.objects.count() == 12


class _nothing:  # noqa: N801 - a stand-in for contextlib.nullcontext(None) with a type
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
