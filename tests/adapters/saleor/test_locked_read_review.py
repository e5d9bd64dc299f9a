"""Adversarial review of the callback's single locked read (issue 16, goal 3).

The payment, its store key and Saleor's "a report is still owed" flag are read in one
``SELECT ... FOR UPDATE``. On PostgreSQL (READ COMMITTED) a statement that waited for the
row's lock returns the row as committed by the holder, but its subqueries still see the
snapshot taken before the wait: a report the holder owed Saleor is invisible to it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from cmi_django.models import CallbackLog, Payment
from cmi_saleor.models import EventReport, TransactionMap
from django.db import connection, connections, transaction
from django.db.models import Value
from django.test import Client

from cmi_core import PaymentState
from tests.adapters.saleor.standin import FakeSaleor
from tests.adapters.saleor.test_sessions import callback_for, initialize, post_callback

pytestmark = pytest.mark.django_db(transaction=True)


def _waiting_for_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return int(cursor.fetchone()[0])


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks: PostgreSQL")
def test_a_report_owed_by_the_lock_holder_goes_out_before_the_callbacks(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    """Another change holds the payment's lock and commits a report Saleor is owed while
    the callback waits for the lock: the callback's report must not overtake it (the
    reports of one transaction go to Saleor in order). Before the review the callback
    read "nothing owed" from its pre-wait snapshot and sent CHARGE_SUCCESS alone."""
    saleor_transaction, answer = initialize(client, saleor)
    holding, done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def other_change() -> None:
        try:
            with transaction.atomic():
                payment = Payment.objects.select_for_update().get()
                payment.save(update_fields=["updated_at"])
                mapping = TransactionMap.objects.get(payment=payment)
                EventReport.objects.create(
                    mapping=mapping,
                    event_type="INFO",
                    variables={
                        "id": mapping.transaction_id,
                        "type": "INFO",
                        "amount": "0.00",
                        "pspReference": "TX-EARLIER",
                        "message": "an earlier change",
                        "availableActions": [],
                    },
                )
                holding.set()
                deadline = time.monotonic() + 20
                while _waiting_for_a_lock() == 0 and time.monotonic() < deadline:
                    time.sleep(0.02)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            done.set()
            connections.close_all()

    thread = threading.Thread(target=other_change)
    thread.start()
    assert holding.wait(20)
    reply = post_callback(client, callback_for(answer, trans_id="TX-A"))
    thread.join(30)
    assert not errors
    assert reply == "ACTION=POSTAUTH"
    assert Payment.objects.get().state == PaymentState.CAPTURED
    sent = [(r["type"], r["pspReference"]) for r in saleor.reports]
    assert sent == [("INFO", "TX-EARLIER"), ("CHARGE_SUCCESS", "TX-A")]
    assert not EventReport.objects.exists()
    assert CallbackLog.objects.get().reply == "ACTION=POSTAUTH"
    assert saleor_transaction["id"] == saleor.reports[-1]["id"]


def _arabic_indic(number: int) -> str:
    return "".join(chr(0x0660 + int(d)) for d in str(number))


@pytest.mark.parametrize(
    "suffix",
    [
        _arabic_indic,  # str.isdigit accepts them, int() reads them
        lambda pk: "\u00b2",  # superscript two: isdigit True, int() raises ValueError
        lambda pk: f"{pk}\u0663",
        lambda pk: "9" * 19,  # beyond bigint
        lambda pk: "9" * 400,  # int() refuses more than 4300 digits; the column is short
    ],
    ids=["arabic-indic", "superscript", "mixed", "19-digits", "huge"],
)
def test_a_channel_key_that_is_not_ascii_digits_names_no_channel_on_any_path(
    client: Client, saleor: FakeSaleor, channel: Any, suffix: Any
) -> None:
    """The joined read (SQL: ASCII digits only) and the resolver (``get_config``, used by
    approvals without a callback and staff operations) agree: no channel, refused with
    ImproperlyConfigured (before the review the resolver read ``saleor:\u0661`` as
    channel 1 and raised ValueError for ``saleor:\u00b2``)."""
    from cmi_django.config import config_of, get_config
    from cmi_django.inbound import _locked
    from django.core.exceptions import ImproperlyConfigured

    key = f"saleor:{suffix(channel.pk)}"
    with pytest.raises(ImproperlyConfigured, match="no such CMI channel configuration"):
        get_config(key)
    _, answer = initialize(client, saleor)
    Payment.objects.update(config_key=key[:64])
    with transaction.atomic():
        payment = _locked(answer["data"]["fields"]["oid"])
    assert payment is not None
    with pytest.raises(ImproperlyConfigured, match="no such CMI channel configuration"):
        config_of(payment)
    assert post_callback(client, callback_for(answer)) == "FAILURE"
    assert Payment.objects.get().state != PaymentState.CAPTURED
    assert not saleor.reports
    assert CallbackLog.objects.get().reply == "FAILURE"


class _PaymentsElsewhere:
    """Payments (and Saleor's rows) on the database "elsewhere"; the rest on default."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return "elsewhere" if model._meta.app_label in ("cmi_django", "cmi_saleor") else None

    db_for_write = db_for_read


@pytest.fixture
def other_vendor_elsewhere() -> Any:
    """An alias "elsewhere" on the other vendor than default's (SQLite when default is
    PostgreSQL, and the reverse), never connected: only its dialect is used."""
    other = (
        {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
        if connection.vendor == "postgresql"
        else {"ENGINE": "django.db.backends.postgresql", "NAME": "unused"}
    )
    connections.settings["elsewhere"] = other
    try:
        yield connections["elsewhere"]
    finally:
        del connections["elsewhere"]
        del connections.settings["elsewhere"]


def test_the_locked_read_is_written_for_the_payments_database_not_defaults(
    other_vendor_elsewhere: Any, settings: Any
) -> None:
    """A shop whose payments live on another database than ``default``, of another kind:
    the callback's read is written in that database's dialect. Before, the Saleor parts
    (the channel's config row, the "report owed" flag) followed ``default``: SQLite's
    ``json_object`` sent to PostgreSQL, or on PostgreSQL the flag read in the locking
    statement, where it can miss a report committed while the callback waited for the
    lock (the test above)."""
    from cmi_django import inbound

    settings.DATABASE_ROUTERS = [_PaymentsElsewhere()]
    query = inbound._locking("100001-1")
    assert query.db == "elsewhere"
    # (compiling a locking read needs a connection; "elsewhere" has none: its parts)
    annotations = query.query.annotations
    config_sql = annotations["_cmi_config_saleor"].sql
    owed = annotations["_saleor_owed_before"]
    if other_vendor_elsewhere.vendor == "postgresql":
        assert "json_build_object(" in config_sql, config_sql
        assert "~ '^saleor:" in config_sql
        # the flag is asked after the lock there, not in the locking statement
        assert isinstance(owed, Value), owed
        assert owed.value is None
    else:
        assert "json_object(" in config_sql, config_sql
        assert "json_build_object(" not in config_sql
        assert "EXISTS(SELECT 1" in owed.sql
