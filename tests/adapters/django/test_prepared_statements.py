"""The callback's statements prepared on PostgreSQL (issue 16, goal 3).

On a connection's second callback transaction, :mod:`cmi_django.statements` prepares the
locked read and the held writes (SQL ``PREPARE``, in the query that opens the transaction)
and from then on sends ``BEGIN; EXECUTE ...`` and ``EXECUTE ...; COMMIT``: PostgreSQL
parses and plans them once per connection. These tests read what reached the server
(libpq's trace) and hold it to what matters: the same rows written as without preparing,
and a statement that is gone from the server or taken there (a pooler handing the client
another server connection, ``DEALLOCATE ALL``) never failing a callback: the read is sent
again unprepared and the connection prepares nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from cmi_django import services, statements
from cmi_django.models import CallbackLog, Payment
from django.db import OperationalError, connection, connections

from tests.adapters.recorded import round_trips

from .conftest import callback_for, client_side_binding, postgres_only
from .test_statements_fold import in_step

pytestmark = [pytest.mark.django_db(transaction=True), postgres_only, client_side_binding]


def prepares_nothing(sent: list[str]) -> bool:
    """No round trip of ``sent`` prepares a statement or runs a prepared one."""
    return not any("PREPARE" in s or "EXECUTE" in s for s in sent)


def paid(payment: Payment, trans_id: str) -> list[str]:
    """CMI's approval of ``payment``: what reached the server (checked captured)."""
    replies: list[str] = []
    fields = callback_for(payment, trans_id=trans_id)
    sent = round_trips(lambda: replies.append(services.handle_callback(fields).reply))
    assert replies == ["ACTION=POSTAUTH"], sent
    fresh = Payment.objects.get(pk=payment.pk)
    assert fresh.state == "captured"
    assert fresh.captured_amount == fresh.authorised_amount == Decimal("120.50")
    assert fresh.trans_id == trans_id
    log = CallbackLog.objects.get(payment=payment, kind="callback")
    assert log.outcome == "capture"
    assert log.fields == fields
    assert log.verified
    in_step()
    return sent


def on_server() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {name for (name,) in cursor.fetchall()}


@pytest.fixture
def payments(make_payment: Callable[..., Payment]) -> list[Payment]:
    return [make_payment() for _ in range(5)]


def test_the_second_transaction_prepares_and_the_third_only_executes(
    payments: list[Payment],
) -> None:
    first = paid(payments[0], "T1")
    assert first[0].startswith("BEGIN; SELECT"), first[0][:80]
    assert first[-1].startswith("WITH ")
    assert first[-1].endswith("; COMMIT")
    assert not on_server()

    second = paid(payments[1], "T2")
    # the read and the writes first sent in the first transaction (the callback's, the
    # test platform hook's), prepared with the read
    assert second[0].startswith("BEGIN; PREPARE cmi_"), second[0][:80]
    preparing = second[0].count("PREPARE cmi_")
    assert preparing >= 2, second[0][:200]
    assert "; EXECUTE cmi_" in second[0]
    assert second[-1].startswith("EXECUTE cmi_")
    assert second[-1].endswith("; COMMIT")
    assert len(on_server()) == preparing

    third = paid(payments[2], "T3")
    assert third[0].startswith("BEGIN; EXECUTE cmi_"), third[0][:80]
    assert "SELECT" not in third[0]
    assert "PREPARE" not in third[0]
    assert third[-1].startswith("EXECUTE cmi_")
    assert third[-1].endswith("; COMMIT")
    assert len(third) == len(first)
    assert len(on_server()) == preparing


def test_a_prepared_read_still_locks_the_row(payments: list[Payment]) -> None:
    paid(payments[0], "T1")
    paid(payments[1], "T2")
    other = connections.create_connection("default")
    try:
        with statements.atomic("default"):
            sent = round_trips(lambda: statements_read(payments[2]))
            assert sent[0].startswith("BEGIN; EXECUTE cmi_"), sent
            with other.cursor() as cursor, pytest.raises(OperationalError):
                cursor.execute(
                    "SELECT id FROM cmi_django_payment WHERE id = %s FOR UPDATE NOWAIT",
                    [payments[2].pk],
                )
    finally:
        other.close()
    in_step()


def statements_read(payment: Payment) -> None:
    from cmi_django.inbound import _locked

    locked = _locked(payment.oid)
    assert locked is not None
    assert locked.pk == payment.pk


def test_statements_gone_from_the_server_the_read_is_sent_again_unprepared(
    payments: list[Payment],
) -> None:
    """``DEALLOCATE ALL`` (a pooler's reset, another server connection): the callback
    is answered and written as ever; the connection prepares nothing more."""
    paid(payments[0], "T1")
    paid(payments[1], "T2")
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    third = paid(payments[2], "T3")
    assert third[0].startswith("BEGIN; EXECUTE cmi_")  # refused by the server...
    assert third[1] == "ROLLBACK"
    assert third[2].startswith("BEGIN; SELECT")  # ...and sent again as it was
    assert third[-1].startswith("WITH ")
    assert third[-1].endswith("; COMMIT")
    for payment, trans_id in ((payments[3], "T4"), (payments[4], "T5")):
        sent = paid(payment, trans_id)
        assert prepares_nothing(sent), sent
    assert not on_server()


def test_a_name_taken_on_the_server_the_read_is_sent_again_unprepared(
    payments: list[Payment],
) -> None:
    """Behind a pooler another client's statement may hold a name on the server
    connection (here: this client's own next name, taken behind its back)."""
    paid(payments[0], "T1")
    token = statements._CONNECTIONS[connection.connection].token
    with connection.cursor() as cursor:
        cursor.execute(f"PREPARE cmi_{token}_0 AS SELECT 1")
    second = paid(payments[1], "T2")
    assert second[0].startswith("BEGIN; PREPARE cmi_")
    assert second[1] == "ROLLBACK"
    assert second[2].startswith("BEGIN; SELECT")
    sent = paid(payments[2], "T3")
    assert prepares_nothing(sent), sent


def test_a_statement_postgresql_refuses_to_prepare_is_not_tried_again(
    payments: list[Payment], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The query that prepared it fails (here: a text PostgreSQL cannot parse); the
    callback goes through; a new connection does not try those statements again."""
    paid(payments[0], "T1")
    numbered = statements._numbered
    monkeypatch.setattr(
        statements, "_numbered", lambda sql: f"{numbered(sql)} (" if numbered(sql) else None
    )
    second = paid(payments[1], "T2")
    assert second[1] == "ROLLBACK"
    assert second[2].startswith("BEGIN; SELECT")
    assert len(statements._REFUSED) == second[0].count("PREPARE cmi_") >= 2
    connection.close()
    for payment, trans_id in ((payments[2], "T3"), (payments[3], "T4"), (payments[4], "T5")):
        sent = paid(payment, trans_id)
        assert prepares_nothing(sent), sent


def test_an_error_of_the_read_itself_is_not_sent_twice(payments: list[Payment]) -> None:
    """A prepared read that fails for its own sake (a lock it may not wait for) is not
    sent again: the callback fails as it would have unprepared (CMI is answered
    FAILURE and calls again), the connection stays usable and prepares nothing more."""
    paid(payments[0], "T1")
    paid(payments[1], "T2")
    before = Payment.objects.get(pk=payments[2].pk).state
    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM cmi_django_payment WHERE id = %s FOR UPDATE", [payments[2].pk]
            )
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '50ms'")
        replies: list[str] = []
        fields = callback_for(payments[2], trans_id="T3")
        sent = round_trips(lambda: replies.append(services.handle_callback(fields).reply))
        other.rollback()
    finally:
        other.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert replies == ["FAILURE"]
    assert sent[0].startswith("BEGIN; EXECUTE cmi_")
    assert sum(s.startswith("BEGIN; EXECUTE") or "FOR UPDATE" in s for s in sent) == 1, sent
    assert Payment.objects.get(pk=payments[2].pk).state == before
    in_step()
    again = paid(payments[2], "T3")  # CMI's next call
    assert prepares_nothing(again), again


def test_writes_run_prepared_only_after_a_prepared_read() -> None:
    """A write's statement known on the connection is still sent as SQL in a transaction
    whose read was not run prepared (it may be on another server connection)."""
    held = statements.Batch("default", owns=True)
    kept = statements._Prepared()
    kept.names["INSERT 1"] = "cmi_x_0"
    held.kept = kept
    assert held._as_sent("INSERT 1", [1]) == "INSERT 1"
    held.on_server = True
    assert held._as_sent("INSERT 1", [1]) == "EXECUTE cmi_x_0(%s)"
    assert held._as_sent("INSERT 2", [1, 2]) == "INSERT 2"  # new: prepared with the next read
    assert kept.waiting == {"INSERT 2": f"cmi_{kept.token}_1"}


def test_numbered_placeholders_keep_literal_percents() -> None:
    numbered = statements._numbered
    assert numbered("SELECT %s, '100%%' || %s") == "SELECT $1, '100%%' || $2"
    assert numbered("SELECT %%s") == "SELECT %%s"
    assert numbered("SELECT %(name)s") is None


def test_the_setting_turns_preparing_off(payments: list[Payment], settings: Any) -> None:
    settings.CMI_PREPARED_STATEMENTS = False
    for payment, trans_id in zip(payments[:3], ("T1", "T2", "T3"), strict=True):
        sent = paid(payment, trans_id)
        assert prepares_nothing(sent), sent
    assert not on_server()
