"""Saleor's first callback reads the payment, its channel's store key and its transaction
in one locked statement (issue 16, goal 3), and still sees a rotated store key at once.

Nothing is remembered between callbacks: the channel configuration is read afresh with
the payment each time, so a leaked store key replaced in the Dashboard (or straight in the
database, by another process) stops forged callbacks from the next one on.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from cmi_django.models import CallbackLog, Payment
from cmi_saleor.models import ChannelConfiguration
from django.db import connection, transaction
from django.test import Client

from cmi_core import PaymentState
from cmi_core.sandbox import DEFAULT_MERCHANT
from cmi_core.testing import make_callback
from tests.adapters.dbsettings import prepared_statements
from tests.adapters.recorded import round_trips, statements_of
from tests.adapters.saleor.standin import FakeSaleor
from tests.adapters.saleor.test_sessions import callback_for, initialize, post_callback

pytestmark = pytest.mark.django_db(transaction=True)

NEW_KEY = "NEW-STORE-KEY-after-a-leak-0042"


def top_level_from(sql: str) -> str:
    """The table a SELECT reads first (``FROM "table"`` before any subquery)."""
    depth = 0
    for index, char in enumerate(sql):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and sql.startswith(' FROM "', index):
            return sql[index + 7 :].split('"', 1)[0]
    return ""


def signed(answer: dict[str, Any], key: str, **kwargs: Any) -> dict[str, str]:
    fields = answer["data"]["fields"]
    return make_callback(
        key, oid=fields["oid"], amount=Decimal(fields["amount"]), request_fields=fields, **kwargs
    )


def test_the_first_callback_reads_payment_key_and_transaction_in_one_statement(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    _, answer = initialize(client, saleor)
    replies: list[str] = []
    # (what libpq sends, with Django's default binding; Django's log of the statements
    # with prepared statements, whose protocol messages the trace writes otherwise)
    postgres = connection.vendor == "postgresql" and not prepared_statements()
    record = round_trips if postgres else statements_of
    sql = record(lambda: replies.append(post_callback(client, callback_for(answer))))
    assert replies == ["ACTION=POSTAUTH"]
    # on PostgreSQL the transaction's BEGIN goes with the read
    sql = [re.sub(r"^BEGIN[^;]*; ", "", s) for s in sql]
    selects = [top_level_from(s) for s in sql if s.lstrip().upper().startswith("SELECT")]
    # before: the payment twice, the channel configuration, the transaction map
    assert selects == ["cmi_django_payment"], sql
    if postgres:
        # Every round trip to the server: the locked read with the BEGIN; the payment's
        # UPDATE, the owed report, the log row and "is an earlier report owed" (asked
        # after the lock: a locked read that waited sees its subqueries as before the
        # wait, test_locked_read_review.py) as one statement, with the COMMIT; then,
        # once Saleor recorded the report, its DELETE. Before: BEGIN and COMMIT on
        # their own (five).
        assert len(sql) == 3, [s[:60] + s[-30:] for s in sql]
        assert "FOR UPDATE" in sql[0]
        written = sql[1]
        assert written.startswith("WITH "), written
        assert written.endswith("; COMMIT"), written
        for part in (
            'UPDATE "cmi_django_payment"',
            'INSERT INTO "cmi_saleor_eventreport"',
            'INSERT INTO "cmi_django_callbacklog"',
            'EXISTS(SELECT 1 FROM "cmi_saleor_eventreport"',
        ):
            assert part in written, written
        assert sql[2].startswith('DELETE FROM "cmi_saleor_eventreport"'), sql
    assert Payment.objects.get().state == PaymentState.CAPTURED
    assert [r["type"] for r in saleor.reports] == ["CHARGE_SUCCESS"]


@pytest.mark.parametrize("how", ["save", "update"])
def test_a_rotated_store_key_counts_from_the_next_callback(
    client: Client, saleor: FakeSaleor, channel: Any, how: str
) -> None:
    """``update``: changed without signals, as another process or an SQL console would."""
    _, answer = initialize(client, saleor)
    if how == "save":
        channel.store_key = NEW_KEY
        channel.save()
    else:
        ChannelConfiguration.objects.filter(pk=channel.pk).update(store_key=NEW_KEY)
    assert post_callback(client, signed(answer, DEFAULT_MERCHANT.store_key)) == "FAILURE"
    assert Payment.objects.get().state != PaymentState.CAPTURED
    assert not saleor.reports
    refused = CallbackLog.objects.get()
    assert (refused.verified, refused.reply) == (False, "FAILURE")
    assert post_callback(client, signed(answer, NEW_KEY)) == "ACTION=POSTAUTH"
    assert Payment.objects.get().state == PaymentState.CAPTURED


@pytest.mark.parametrize("suffix", ["x", " ", "9" * 30, "-1"])
def test_a_config_key_that_is_not_saleor_digits_names_no_channel(
    client: Client, saleor: FakeSaleor, channel: Any, suffix: str
) -> None:
    """``saleor:<pk>x`` must not read channel ``<pk>`` (SQLite's CAST would make it one)
    nor make PostgreSQL's cast fail the statement: FAILURE, logged, nothing changed."""
    _, answer = initialize(client, saleor)
    Payment.objects.update(config_key=f"saleor:{channel.pk}{suffix}")
    assert post_callback(client, callback_for(answer)) == "FAILURE"
    assert Payment.objects.get().state != PaymentState.CAPTURED
    assert not saleor.reports
    assert CallbackLog.objects.get().reply == "FAILURE"


def test_the_key_read_with_the_payment_is_the_resolvers(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    from cmi_django.config import config_of, get_config
    from cmi_django.inbound import _locked

    channel.api_username = "api-user"
    channel.api_password = "api-password-123"
    channel.base_url = "https://sandbox.example.ma"
    channel.capture_mode = "manual"
    channel.lang = "ar"
    channel.save()
    _, answer = initialize(client, saleor)
    with transaction.atomic():
        payment = _locked(answer["data"]["fields"]["oid"])
    assert payment is not None
    assert "_cmi_config_saleor" in vars(payment)  # read with the payment
    assert config_of(payment) == get_config(payment.config_key)
    assert config_of(payment).api_password == "api-password-123"


@pytest.mark.skipif(
    connection.vendor != "postgresql" or prepared_statements(),
    reason="PostgreSQL with Django's default client-side binding",
)
def test_prepared_the_callback_still_reads_the_key_of_now(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    """From a connection's third first callback on, the read and the writes run as
    statements prepared on it (``cmi_django.statements``): two round trips before the
    reply, and the channel's key still read afresh each time (a rotated key refuses the
    old one at once)."""
    answers = [initialize(client, saleor)[1] for _ in range(5)]
    sent: list[list[str]] = []
    replies: list[str] = []
    for answer in answers[:3]:
        sent.append(
            round_trips(lambda a=answer: replies.append(post_callback(client, callback_for(a))))
        )
    assert replies == ["ACTION=POSTAUTH"] * 3
    third = sent[2]
    assert len(third) == 3, [s[:60] for s in third]
    assert third[0].startswith("BEGIN; EXECUTE cmi_"), third[0][:80]
    assert third[1].startswith("EXECUTE cmi_"), third[1][:80]
    assert third[1].endswith("; COMMIT"), third[1][-80:]
    assert third[2].startswith('DELETE FROM "cmi_saleor_eventreport"')
    assert [r["type"] for r in saleor.reports] == ["CHARGE_SUCCESS"] * 3
    assert Payment.objects.filter(state=PaymentState.CAPTURED).count() == 3

    ChannelConfiguration.objects.filter(pk=channel.pk).update(store_key=NEW_KEY)
    old = signed(answers[3], DEFAULT_MERCHANT.store_key)
    refused = round_trips(lambda: post_callback(client, old))
    assert refused[0].startswith("BEGIN; EXECUTE cmi_")  # prepared, and the key of now
    assert post_callback(client, old) == "FAILURE"
    assert post_callback(client, signed(answers[3], NEW_KEY)) == "ACTION=POSTAUTH"
    assert post_callback(client, signed(answers[4], NEW_KEY)) == "ACTION=POSTAUTH"
    assert Payment.objects.filter(state=PaymentState.CAPTURED).count() == 5
    assert [r["type"] for r in saleor.reports] == ["CHARGE_SUCCESS"] * 5
