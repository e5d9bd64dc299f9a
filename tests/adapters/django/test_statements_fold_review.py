"""Review of the callback transaction's folded ``BEGIN`` and ``COMMIT``
(:func:`cmi_django.statements.atomic`, issue 16 goal 3): what the folds could commit that
Django would not, or answer CMI without committing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from cmi_django import services, statements
from cmi_django.inbound import _locked
from cmi_django.models import CallbackLog, Payment
from django.db import DatabaseError, DataError, IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext, override_settings

from .conftest import callback_for, postgres_only
from .testapp.hooks import RecordingHook
from .testapp.models import HookCall

pytestmark = [pytest.mark.django_db(transaction=True)]


def log_of(payment: Payment) -> CallbackLog:
    return CallbackLog(payment=payment, oid=payment.oid, kind="callback", outcome="test")


def psycopg3() -> bool:
    connection.ensure_connection()
    return type(connection.connection).__module__.split(".")[0] == "psycopg"


def in_step() -> None:
    """The driver's autocommit is Django's, and no transaction is left open (PostgreSQL,
    psycopg 3 or psycopg2)."""
    if connection.vendor != "postgresql":
        return
    raw = connection.connection
    assert raw.autocommit is connection.get_autocommit() is True
    if psycopg3():
        from psycopg import pq

        assert raw.pgconn.transaction_status == pq.TransactionStatus.IDLE
    else:
        import psycopg2.extensions  # type: ignore[import-not-found, unused-ignore]

        assert raw.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE


def test_a_hook_catching_its_own_failed_save_makes_the_callback_fail(
    payment: Payment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The platform's hook catches the IntegrityError of its own ``save`` (no atomic
    block of its own): Django marks the transaction for rollback. The callback's log
    written after it must fail as the ORM fails it (TransactionManagementError), so the
    callback answers FAILURE: never ``ACTION=POSTAUTH`` with nothing committed (CMI
    would capture a payment the shop has no record of)."""
    taken = HookCall.objects.create(oid="taken", method="x")

    def on_captured(self: RecordingHook, change: Any, effect: Any) -> None:
        with contextlib.suppress(IntegrityError):  # a hook that carries on
            HookCall.objects.create(pk=taken.pk, oid=change.payment.oid, method="captured")

    monkeypatch.setattr(RecordingHook, "on_captured", on_captured)
    outcome = services.handle_callback(callback_for(payment))
    fresh = Payment.objects.get(pk=payment.pk)
    logs = list(CallbackLog.objects.filter(oid=payment.oid).values_list("outcome", "reply"))
    assert outcome.reply == "FAILURE", (outcome.reply, fresh.state, logs)
    assert fresh.state == payment.state
    assert logs == [("error", "FAILURE")]
    in_step()


@pytest.fixture
def deferred_refusal() -> Iterator[None]:
    """A shop's deferred constraint on its own table (the hook's rows): checked at
    COMMIT, which fails."""
    table = connection.ops.quote_name(HookCall._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION review4_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'ledger out of balance' USING ERRCODE = '23514'; END $$"
        )
        cursor.execute(
            f"CREATE CONSTRAINT TRIGGER review4_refuse AFTER INSERT ON {table} "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION review4_refuse()"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER review4_refuse ON {table}")
            cursor.execute("DROP FUNCTION review4_refuse()")


@postgres_only
@pytest.mark.usefixtures("deferred_refusal")
def test_a_commit_refused_by_a_deferred_constraint_fails_the_callback(
    payment: Payment,
) -> None:
    """The folded COMMIT itself fails: the error surfaces, nothing is committed, the
    callback answers FAILURE and logs it, the connection is ready for the next one."""
    fields = callback_for(payment)
    sent: list[str] = []

    def seen(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(seen):
        outcome = services.handle_callback(fields)
    folded = any(s.endswith("; COMMIT") for s in sent)
    # psycopg2, server-side binding: Django's own COMMIT fails the same way
    assert folded is (psycopg3() and statements._client_side(connection.connection)), sent
    assert outcome.reply == "FAILURE"
    assert "ledger out of balance" in outcome.error
    fresh = Payment.objects.get(pk=payment.pk)
    assert fresh.state == payment.state
    assert fresh.captured_amount == payment.captured_amount
    assert not HookCall.objects.exists()
    logs = list(CallbackLog.objects.filter(oid=payment.oid).values_list("outcome", "reply"))
    assert logs == [("error", "FAILURE")]
    in_step()


@postgres_only
def test_a_deferred_foreign_key_violated_at_the_folded_commit_commits_nothing(
    payment: Payment,
) -> None:
    """Django's foreign keys are DEFERRABLE INITIALLY DEFERRED on PostgreSQL: a held
    insert naming a missing row fails at the COMMIT sent with it."""

    def write() -> None:
        with statements.atomic("default"):
            locked = _locked(payment.oid)
            assert locked is not None
            locked.state = "captured"
            statements.update(locked, ("state",))
            statements.insert(
                CallbackLog(payment_id=987654, oid=payment.oid, kind="callback", outcome="x")
            )

    with pytest.raises(IntegrityError):
        write()
    assert Payment.objects.get(pk=payment.pk).state == payment.state
    assert not CallbackLog.objects.exists()
    in_step()
    with statements.atomic("default"):  # the connection serves the next callback
        assert _locked(payment.oid) is not None
    in_step()


class _Psycopg2DivisionByZeroError(Exception):
    """psycopg2's error as Django wraps it: the SQLSTATE in ``pgcode`` (psycopg 3:
    ``sqlstate``)."""

    pgcode = "22012"


@postgres_only
def test_an_update_finding_no_row_is_named_so_through_psycopg2_too(payment: Payment) -> None:
    """Django 5.2 still runs on psycopg2: the UPDATE's ``1 / count(*)`` failing there is
    the ORM's "did not affect any rows", not "division by zero" (the callback's log and
    FAILURE name it). Run on psycopg2 itself, ``test_statements.py::
    test_an_update_finding_no_row_fails_and_rolls_everything_back`` checks the same."""
    gone = Payment.objects.get(pk=payment.pk)
    gone.pk = 987654

    def as_psycopg2(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        try:
            return execute(sql, params, many, context)
        except DataError as exc:
            if "division by zero" not in str(exc):
                raise
            raise DataError(str(exc)) from _Psycopg2DivisionByZeroError()

    def write() -> None:
        with connection.execute_wrapper(as_psycopg2), statements.atomic("default"):
            _locked(payment.oid)
            statements.insert(log_of(payment))
            statements.update(gone, ("state",))

    with pytest.raises(DatabaseError, match="did not affect any rows"):
        write()
    assert not CallbackLog.objects.exists()
    in_step()


@postgres_only
def test_a_connection_lost_between_the_read_and_the_writes_commits_nothing(
    payment: Payment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends the callback's session while its writes are held (the hook is
    running): the statement carrying them and the COMMIT fails, the callback answers
    FAILURE and logs it on a new connection, and the next callback is served."""
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    other = connections.create_connection("default")

    def on_captured(self: RecordingHook, change: Any, effect: Any) -> None:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])

    try:
        with monkeypatch.context() as patched:
            patched.setattr(RecordingHook, "on_captured", on_captured)
            outcome = services.handle_callback(callback_for(payment))
    finally:
        other.close()
    assert outcome.reply == "FAILURE"
    fresh = Payment.objects.get(pk=payment.pk)
    assert fresh.state == payment.state
    logs = list(CallbackLog.objects.filter(oid=payment.oid).values_list("outcome", "reply"))
    assert logs == [("error", "FAILURE")]
    in_step()
    assert services.handle_callback(callback_for(payment)).reply == "ACTION=POSTAUTH"
    assert Payment.objects.get(pk=payment.pk).state == "captured"
    in_step()


@postgres_only
def test_a_hooks_savepoint_and_on_commit_see_the_folded_commit(
    payment: Payment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook opens its own atomic block (a savepoint), catches its failure, and asks
    for work after the commit: the savepoint is rolled back alone, the callback's writes
    commit (folded), and the ``on_commit`` work runs after them, seeing them from another
    connection; Django's debug cursor (``connection.queries``) records the folds."""
    taken = HookCall.objects.create(oid="taken", method="x")
    seen: list[str] = []

    def after() -> None:
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("SELECT state FROM cmi_django_payment WHERE id = %s", [payment.pk])
                seen.append(cursor.fetchone()[0])
        finally:
            other.close()

    def on_captured(self: RecordingHook, change: Any, effect: Any) -> None:
        with contextlib.suppress(IntegrityError), transaction.atomic():
            HookCall.objects.create(pk=taken.pk, oid=change.payment.oid, method="captured")
        transaction.on_commit(after)

    monkeypatch.setattr(RecordingHook, "on_captured", on_captured)
    with CaptureQueriesContext(connection) as queries:
        outcome = services.handle_callback(callback_for(payment))
    assert outcome.reply == "ACTION=POSTAUTH"
    assert seen == ["captured"]
    assert Payment.objects.get(pk=payment.pk).state == "captured"
    assert CallbackLog.objects.filter(oid=payment.oid, reply="ACTION=POSTAUTH").exists()
    if statements._client_side(connection.connection):
        sql = [query["sql"] for query in queries.captured_queries]
        # (Django itself notes a "BEGIN" and a "COMMIT" it never sends: psycopg's)
        assert any(s.startswith("BEGIN") and "; SELECT" in s for s in sql), sql
        assert any(s.endswith("; COMMIT") for s in sql), sql
    in_step()


class _PaymentsElsewhere:
    """The payments app on its own database ("payments"), the shop's models on
    "default" (here both the same server and database, two connections)."""

    def _alias(self, model: Any) -> str | None:
        return "payments" if model._meta.app_label == "cmi_django" else None

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return self._alias(model)

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return self._alias(model)

    def allow_relation(self, *objects: Any) -> bool:
        return True


@pytest.fixture
def payments_elsewhere(payment: Payment) -> Iterator[None]:
    """Set up after the test's database, connected at once (the test case refuses to
    connect an alias it did not know)."""
    connections.settings["payments"] = dict(connections["default"].settings_dict)
    connections["payments"].connect()
    try:
        with override_settings(DATABASE_ROUTERS=[_PaymentsElsewhere()]):
            yield
    finally:
        connections["payments"].close()
        del connections["payments"]
        del connections.settings["payments"]


@postgres_only
@pytest.mark.usefixtures("payments_elsewhere")
def test_with_payments_on_their_own_database_the_hooks_writes_roll_back_with_the_callback(
    payment: Payment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The routers write payments to another database than the shop's models: the
    hook's writes on the default database (the shop's order) must still roll back when
    the callback fails after them (here its own log's insert), as when the callback's
    transaction was the default database's; the payment is not captured either."""
    real_insert = statements.insert

    def failing_log(instance: Any) -> Any:
        if isinstance(instance, CallbackLog) and instance.outcome != "error":
            raise DatabaseError("the log could not be written")
        return real_insert(instance)

    monkeypatch.setattr(statements, "insert", failing_log)
    outcome = services.handle_callback(callback_for(payment))
    assert outcome.reply == "FAILURE"
    assert "could not be written" in outcome.error
    assert Payment.objects.get(pk=payment.pk).state == payment.state
    assert not HookCall.objects.filter(method="captured").exists()
    in_step()


@postgres_only
@pytest.mark.usefixtures("payments_elsewhere")
def test_with_payments_on_their_own_database_a_callback_captures(payment: Payment) -> None:
    """The same routers, nothing failing: the payment is captured (its transaction's
    BEGIN and COMMIT folded on its own database), the hook's row and the log committed."""
    outcome = services.handle_callback(callback_for(payment))
    assert outcome.reply == "ACTION=POSTAUTH"
    assert Payment.objects.get(pk=payment.pk).state == "captured"
    assert HookCall.objects.filter(oid=payment.oid, method="captured").exists()
    assert CallbackLog.objects.filter(oid=payment.oid, reply="ACTION=POSTAUTH").exists()
    for alias in ("default", "payments"):
        assert connections[alias].get_autocommit()
        assert not connections[alias].in_atomic_block


@postgres_only
def test_a_held_write_failing_in_a_caught_savepoint_commits_nothing(payment: Payment) -> None:
    """A write held inside a savepoint fails when the savepoint is released (its
    statement sends it); Django rolls back to the savepoint and the caller catches the
    error: the transaction is healthy again, but the block must still fail without
    committing (the batch raises the error again at its end), not send its remaining
    writes with a COMMIT first."""
    gone = Payment.objects.get(pk=payment.pk)
    gone.pk = 987654

    def write() -> None:
        with statements.atomic("default"):
            locked = _locked(payment.oid)
            assert locked is not None
            locked.state = "captured"
            statements.update(locked, ("state",))
            with contextlib.suppress(DatabaseError), transaction.atomic():
                statements.update(gone, ("state",))  # sent by RELEASE SAVEPOINT: fails
            statements.insert(log_of(payment))

    with pytest.raises(DatabaseError, match="did not affect any rows"):
        write()
    assert Payment.objects.get(pk=payment.pk).state == payment.state
    assert not CallbackLog.objects.exists()
    in_step()


@postgres_only
def test_after_a_hook_failure_the_connection_is_in_step_for_the_next_callback(
    make_payment: Any,
) -> None:
    """The hook raises inside the folded transaction: rolled back, FAILURE, the payment
    flagged after; psycopg and Django agree again, the next callback folds and commits."""
    failing = make_payment(data={"hook_raises": True})
    outcome = services.handle_callback(callback_for(failing))
    assert outcome.reply == "FAILURE"
    fresh = Payment.objects.get(pk=failing.pk)
    assert fresh.state == "needs_attention"  # flagged after the rollback
    assert fresh.captured_amount == failing.captured_amount
    assert fresh.attention_reason
    in_step()
    other = make_payment()
    assert services.handle_callback(callback_for(other)).reply == "ACTION=POSTAUTH"
    assert Payment.objects.get(pk=other.pk).state == "captured"
    in_step()


@postgres_only
def test_a_commit_folded_after_psycopgs_own_begin_leaves_both_in_step(payment: Payment) -> None:
    """The block's first statement is not the folded read (an ORM query: psycopg sends
    its own BEGIN, autocommit off); its writes still carry the COMMIT, and psycopg,
    finding the transaction closed, sends no other: committed, and in step."""
    with statements.atomic("default"):
        assert Payment.objects.filter(pk=payment.pk).exists()
        locked = _locked(payment.oid)
        assert locked is not None
        locked.state = "captured"
        statements.update(locked, ("state",))
        statements.insert(log_of(payment))
    assert Payment.objects.get(pk=payment.pk).state == "captured"
    assert CallbackLog.objects.filter(oid=payment.oid).exists()
    in_step()
