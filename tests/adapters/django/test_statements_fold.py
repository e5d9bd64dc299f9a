"""The callback's transaction in two round trips on PostgreSQL (issue 16, goal 3).

:func:`cmi_django.statements.atomic` sends the transaction's ``BEGIN`` with its locked
read and its ``COMMIT`` with its held writes. These tests read what reached the server
(libpq's trace) and hold the folds to what Django's ``atomic`` would have done: the writes
committed only when the outermost block ends normally, nothing committed when an update
finds no row, when the block raises or when Django was asked to roll back, the row really
locked by the read, and psycopg's view of the transaction in step with Django's after.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from cmi_django import services, statements
from cmi_django.inbound import _locked
from cmi_django.models import CallbackLog, Payment
from django.db import DatabaseError, OperationalError, connection, connections, transaction

from tests.adapters.recorded import round_trips

from .conftest import callback_for, client_side_binding, postgres_only

pytestmark = [pytest.mark.django_db(transaction=True), postgres_only]


def log_of(payment: Payment, outcome: str = "test") -> CallbackLog:
    return CallbackLog(
        payment=payment, oid=payment.oid, kind="callback", fields={}, outcome=outcome
    )


def in_step() -> None:
    """psycopg's autocommit is Django's, and no transaction is left open."""
    from psycopg import pq

    raw = connection.connection
    assert raw.autocommit is connection.get_autocommit() is True
    assert raw.pgconn.transaction_status == pq.TransactionStatus.IDLE


@client_side_binding
def test_a_callbacks_transaction_opens_with_its_read_and_closes_with_its_writes(
    payment: Payment,
) -> None:
    """No round trip of its own for BEGIN or COMMIT (the test platform's hook writes
    rows of its own in between: Saleor's callback is two round trips in all)."""
    outcome: list[Any] = []
    sent = round_trips(lambda: outcome.append(services.handle_callback(callback_for(payment))))
    assert outcome[0].reply == "ACTION=POSTAUTH"
    shown = [s[:60] + s[-30:] for s in sent]
    assert "BEGIN" not in sent, shown
    assert "COMMIT" not in sent, shown
    assert sent[0].startswith("BEGIN; SELECT"), shown
    assert "FOR UPDATE" in sent[0]
    assert sent[-1].startswith("WITH "), shown
    assert sent[-1].endswith("; COMMIT"), shown
    fresh = Payment.objects.get(pk=payment.pk)
    assert fresh.state == "captured"
    assert fresh.captured_amount == Decimal("120.50")
    assert CallbackLog.objects.filter(payment=payment, outcome=outcome[0].decision.outcome).exists()
    in_step()


@client_side_binding
def test_the_folded_begin_opens_a_real_transaction_and_locks_the_row(payment: Payment) -> None:
    """Between the read and the end of the block another connection cannot lock the
    row; once the block ends it can."""
    other = connections.create_connection("default")
    try:

        def try_lock() -> bool:
            with other.cursor() as cursor:
                try:
                    cursor.execute(
                        "SELECT id FROM cmi_django_payment WHERE id = %s FOR UPDATE NOWAIT",
                        [payment.pk],
                    )
                except OperationalError:
                    return False
                return True

        other.set_autocommit(True)
        with statements.atomic("default"):
            sent = round_trips(lambda: _locked(payment.oid))
            assert sent[0].startswith("BEGIN; SELECT"), sent
            assert not try_lock()
        assert try_lock()
    finally:
        other.close()
    in_step()


def test_nested_in_another_transaction_nothing_is_folded_and_the_outer_rolls_back(
    payment: Payment,
) -> None:
    class UndoError(Exception):
        pass

    def run() -> None:
        with transaction.atomic():
            with statements.atomic("default"):
                locked = _locked(payment.oid)
                assert locked is not None
                locked.state = "captured"
                statements.update(locked, ("state",))
                statements.insert(log_of(payment))
            raise UndoError

    sent: list[str] = []
    with pytest.raises(UndoError):
        sent = round_trips(run)
    assert not any("COMMIT" in s for s in sent), sent
    assert Payment.objects.get(pk=payment.pk).state == payment.state
    assert not CallbackLog.objects.exists()
    in_step()


def test_an_update_finding_no_row_commits_nothing(payment: Payment) -> None:
    gone = Payment.objects.get(pk=payment.pk)
    gone.pk = 987654

    def write() -> None:
        with statements.atomic("default"):
            _locked(payment.oid)
            statements.insert(log_of(payment))
            statements.update(gone, ("state",))

    with pytest.raises(DatabaseError, match="did not affect any rows") as raised:
        write()
    if hasattr(Payment, "NotUpdated"):  # Django 6.0: what save(update_fields=...) raises
        assert isinstance(raised.value, Payment.NotUpdated)
    assert not CallbackLog.objects.exists()
    in_step()


def test_a_block_asked_to_roll_back_commits_nothing(payment: Payment) -> None:
    """An inner block without a savepoint failed and was caught: Django rolls the
    whole transaction back at the end; the held writes must not commit it first."""
    with statements.atomic("default"):
        _locked(payment.oid)
        statements.insert(log_of(payment))
        try:
            with transaction.atomic(savepoint=False):
                raise ValueError("caught")
        except ValueError:
            pass
        assert connection.needs_rollback
    assert not CallbackLog.objects.exists()
    in_step()


def test_an_error_after_the_folded_read_rolls_back(payment: Payment) -> None:

    def write() -> None:
        with statements.atomic("default"):
            locked = _locked(payment.oid)
            assert locked is not None
            statements.insert(log_of(payment))
            CallbackLog.objects.create(payment=payment, oid=payment.oid, kind="callback")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        write()
    assert not CallbackLog.objects.exists()
    in_step()


@client_side_binding
def test_a_failing_read_leaves_the_connection_usable(payment: Payment) -> None:
    """The read with its BEGIN fails on the server (here: a lock it may not wait for):
    Django rolls back, psycopg's state follows, the next transaction works."""
    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM cmi_django_payment WHERE id = %s FOR UPDATE", [payment.pk]
            )

        def read() -> None:
            with statements.atomic("default"), connection.execute_wrapper(_lock_timeout):
                _locked(payment.oid)

        with pytest.raises(OperationalError):
            read()
        other.rollback()
    finally:
        other.close()
    in_step()
    with statements.atomic("default"):
        assert _locked(payment.oid) is not None
    in_step()


def _lock_timeout(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
) -> Any:
    """The folded read waits 50 ms at most for its lock."""
    assert sql.startswith("BEGIN; SELECT"), sql
    if sql.startswith("BEGIN"):
        sql = sql.replace("; SELECT", "; SET LOCAL lock_timeout = '50ms'; SELECT", 1)
    return execute(sql, params, many, context)


@client_side_binding
def test_begin_is_psycopgs_own_for_the_connections_settings() -> None:
    """The folded BEGIN carries the isolation level and access mode psycopg would send."""
    import psycopg
    from cmi_django.statements import Batch, _begins

    held = Batch("default", owns=True)
    connection.ensure_connection()
    raw = connection.connection
    try:
        for level in (None, *psycopg.IsolationLevel):
            for read_only in (None, True, False):
                for deferrable in (None, True):
                    raw.isolation_level = level
                    raw.read_only = read_only
                    raw.deferrable = deferrable
                    raw.autocommit = False
                    expected = raw._get_tx_start_command().decode()
                    raw._begin_statement = b""  # psycopg keeps its text once built
                    assert _begins(held) == expected
    finally:
        raw.isolation_level = raw.read_only = raw.deferrable = None
        raw._begin_statement = b""
        raw.autocommit = True


@client_side_binding
def test_no_fold_through_psycopgs_server_side_binding() -> None:
    """Cursors binding on the server cannot send two statements as one."""
    import psycopg
    from cmi_django.statements import _client_side

    connection.ensure_connection()
    assert _client_side(connection.connection)
    raw = psycopg.connect(connection.connection.info.dsn, cursor_factory=psycopg.Cursor)
    try:
        assert not _client_side(raw)
    finally:
        raw.close()
