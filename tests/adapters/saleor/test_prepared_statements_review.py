"""Saleor's callbacks with their statements prepared (:mod:`cmi_django.statements`) behind
a pooler in transaction mode (:mod:`tests.adapters.pooler`): each transaction on either of
two server connections, mostly the last one, as PgBouncer hands them out."""

from __future__ import annotations

from typing import Any

import pytest
from cmi_django.models import CallbackLog, Payment
from django.db import connection
from django.test import Client

from cmi_core import PaymentState
from tests.adapters.dbsettings import prepared_statements
from tests.adapters.pooler import pooled
from tests.adapters.recorded import round_trips
from tests.adapters.saleor.standin import FakeSaleor
from tests.adapters.saleor.test_sessions import callback_for, initialize, post_callback

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql" or prepared_statements(),
        reason="PostgreSQL with Django's default client-side binding",
    ),
]


def test_behind_a_pooler_every_callback_is_answered_and_reported_once(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    """Forty of Saleor's first callbacks over four client connections (``CONN_MAX_AGE``),
    one server connection's statements dropped once (``DEALLOCATE ALL``): each answered
    ``ACTION=POSTAUTH``, its payment captured, one report and one log row each."""
    with pooled(connection) as pooler:
        pooler.switching = 0.02
        answers = [initialize(client, saleor)[1] for _ in range(40)]
        replies: list[str] = []
        prepared = 0
        for number, answer in enumerate(answers):
            if number % 10 == 0:
                connection.close()
            if number == 17:
                with connection.cursor() as cursor:
                    cursor.execute("DEALLOCATE ALL")
            sent = round_trips(
                lambda a=answer: replies.append(post_callback(client, callback_for(a)))
            )
            prepared += sent[0].startswith("BEGIN; EXECUTE cmi_") and sent[1] != "ROLLBACK"
        assert min(pooler.served) > 10  # both server connections served
    assert prepared >= 10  # many callbacks ran prepared
    assert replies == ["ACTION=POSTAUTH"] * 40
    assert Payment.objects.filter(state=PaymentState.CAPTURED).count() == 40
    assert [r["type"] for r in saleor.reports] == ["CHARGE_SUCCESS"] * 40
    assert CallbackLog.objects.filter(outcome="capture").count() == 40
