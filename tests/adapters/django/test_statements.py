"""The callback's statements built once and its writes sent as one (issue 16, goal 3).

:mod:`cmi_django.statements` holds a callback's UPDATE and INSERTs on PostgreSQL and sends
them as one statement. These tests hold it to what the ORM would have done: the same rows,
every write seen by any statement that follows it, a failing write rolling the
transaction back, and the ORM itself wherever it would do something else (a receiver, a
``save`` override, another database).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from cmi_django import services, statements
from cmi_django.inbound import _locked
from cmi_django.models import CallbackLog, Operation, Payment
from django.db import DatabaseError, connection, connections, transaction
from django.db.models.signals import pre_save
from django.test import override_settings

from tests.adapters.recorded import statements_of

from .conftest import callback_for, postgres_only

pytestmark = pytest.mark.django_db(transaction=True)


def compilations(run: Callable[[], Any]) -> int:
    """How many queries the ORM compiled while ``run()`` ran in a transaction, the
    compiled reads forgotten first."""
    from django.db.models.sql.compiler import SQLCompiler

    count = 0
    original = SQLCompiler.as_sql

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal count
        count += 1
        return original(self, *args, **kwargs)

    statements.bump()
    SQLCompiler.as_sql = counting  # type: ignore[method-assign]
    try:
        with transaction.atomic():
            run()
    finally:
        SQLCompiler.as_sql = original  # type: ignore[method-assign]
    return count


def log_of(payment: Payment, outcome: str = "test") -> CallbackLog:
    return CallbackLog(
        payment=payment, oid=payment.oid, kind="callback", fields={"a": "ب"}, outcome=outcome
    )


@postgres_only
def test_an_update_and_two_inserts_go_as_one_statement_with_the_orms_values(
    payment: Payment,
) -> None:
    payment.state = "captured"
    payment.captured_amount = Decimal("120.50")
    first, second = log_of(payment, "one"), log_of(payment, "two")

    def write() -> None:
        with transaction.atomic(), statements.batch("default") as held:
            assert held is not None
            statements.update(payment, ("state", "captured_amount", "updated_at"))
            statements.insert(first)
            statements.insert(second)
            assert first.pk is None  # held: the database has not given it yet

    before = payment.updated_at
    sql = statements_of(write)
    assert len(sql) == 1, sql
    assert sql[0].startswith("WITH "), sql
    assert first.pk
    assert second.pk
    assert first.pk != second.pk
    assert not first._state.adding
    assert first._state.db == "default"
    fresh = Payment.objects.get(pk=payment.pk)
    assert (fresh.state, fresh.captured_amount) == ("captured", Decimal("120.50"))
    assert fresh.updated_at > before  # auto_now, as save() sets it
    rows = {log.pk: log for log in CallbackLog.objects.all()}
    assert rows[first.pk].outcome == "one"
    assert rows[second.pk].outcome == "two"
    assert rows[first.pk].fields == {"a": "ب"}  # JSON as the ORM writes it
    assert rows[first.pk].created_at is not None  # auto_now_add
    assert rows[first.pk].payment_id == payment.pk


@postgres_only
def test_any_other_statement_sees_the_held_writes_first(payment: Payment) -> None:
    """A hook's query, a receiver's read: the held writes are sent before it runs."""
    with transaction.atomic(), statements.batch("default"):
        payment.state = "captured"
        statements.update(payment, ("state",))
        assert Payment.objects.get(pk=payment.pk).state == "captured"
        log = statements.insert(log_of(payment))
        assert log.pk is None  # held
        assert CallbackLog.objects.count() == 1
        assert log.pk is not None


@postgres_only
def test_an_update_finding_no_row_fails_and_rolls_everything_back(payment: Payment) -> None:
    gone = Payment.objects.get(pk=payment.pk)
    gone.pk = 987654

    def write() -> None:
        with transaction.atomic(), statements.batch("default"):
            statements.insert(log_of(payment))
            statements.update(gone, ("state",))

    with pytest.raises(DatabaseError, match="did not affect any rows"):
        write()
    assert not CallbackLog.objects.exists()


def test_an_error_in_the_block_writes_nothing(payment: Payment) -> None:

    def write() -> None:
        with transaction.atomic(), statements.batch("default"):
            payment.state = "captured"
            statements.update(payment, ("state",))
            statements.insert(log_of(payment))
            raise RuntimeError("the hook failed")

    with pytest.raises(RuntimeError):
        write()
    assert not CallbackLog.objects.exists()
    assert Payment.objects.get(pk=payment.pk).state != "captured"


@postgres_only
def test_two_updates_of_one_row_are_both_applied_in_order(payment: Payment) -> None:
    """One statement may change a row once: the first UPDATE is sent before the second."""
    with transaction.atomic(), statements.batch("default"):
        payment.trans_id = "T-1"
        statements.update(payment, ("trans_id",))
        payment.state = "captured"
        statements.update(payment, ("state", "trans_id"))
        payment.auth_code = "A-2"
        statements.update(payment, ("auth_code",))
    fresh = Payment.objects.get(pk=payment.pk)
    assert (fresh.trans_id, fresh.state, fresh.auth_code) == ("T-1", "captured", "A-2")


@postgres_only
def test_a_row_referring_to_a_held_new_row_waits_for_its_id(
    make_payment: Callable[..., Payment],
) -> None:
    payment, other = make_payment(), make_payment()
    with transaction.atomic(), statements.batch("default"):
        first = statements.insert(log_of(payment))
        operation = Operation(payment=other, kind="status", state="succeeded", succeeded=True)
        statements.insert(operation)
        second = statements.insert(log_of(other))
    assert first.pk
    assert operation.pk
    assert second.pk
    assert Operation.objects.get(pk=operation.pk).payment_id == other.pk
    assert CallbackLog.objects.get(pk=second.pk).payment_id == other.pk


@postgres_only
def test_a_probe_sees_what_was_written_before_it_and_not_after(payment: Payment) -> None:
    table = CallbackLog._meta.db_table
    exists = f'EXISTS(SELECT 1 FROM "{table}" WHERE "oid" = %s)'  # noqa: S608 - a test's own SQL
    with transaction.atomic(), statements.batch("default"):
        before = statements.probe(exists, [payment.oid], using="default", reads=(CallbackLog,))
        with pytest.raises(RuntimeError):
            _ = before.value  # not read until the batch sends it
        statements.insert(log_of(payment))
        after = statements.probe(exists, [payment.oid], using="default", reads=(CallbackLog,))
        with pytest.raises(RuntimeError):
            _ = after.value
    assert before.value is False
    assert after.value is True


def test_with_a_save_receiver_the_orm_writes_and_the_receiver_hears_it(
    payment: Payment,
) -> None:
    heard: list[Any] = []

    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        heard.append(instance)

    pre_save.connect(receiver, sender=CallbackLog)
    try:
        with transaction.atomic(), statements.batch("default"):
            log = statements.insert(log_of(payment))
            assert log.pk is not None  # written at once, by save()
    finally:
        pre_save.disconnect(receiver, sender=CallbackLog)
    assert heard == [log]
    assert CallbackLog.objects.get().pk == log.pk


class _Elsewhere:
    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return "elsewhere" if model is CallbackLog else None

    def allow_relation(self, *objects: Any) -> bool:
        return True


@postgres_only
def test_a_row_the_routers_write_elsewhere_is_not_held(payment: Payment) -> None:
    with (
        override_settings(DATABASE_ROUTERS=[_Elsewhere()]),
        transaction.atomic(),
        statements.batch("default") as held,
    ):
        assert held is not None
        assert statements._held(CallbackLog, log_of(payment)) is None
        assert statements._held(Payment, payment) is held


def test_nothing_is_held_outside_postgresql_or_a_transaction(payment: Payment) -> None:
    with statements.batch("default") as held:
        assert held is None  # no transaction open
    with transaction.atomic(), statements.batch("default") as held:
        if connection.vendor != "postgresql":
            assert held is None
        log = statements.insert(log_of(payment))
        if held is None:
            assert log.pk is not None  # written at once


def test_the_locked_read_is_compiled_once_and_reads_each_oid(
    make_payment: Callable[..., Payment],
) -> None:
    first, second = make_payment(), make_payment()
    read: list[Payment | None] = []

    def run() -> None:
        read.extend([_locked(first.oid), _locked(second.oid), _locked("NO-SUCH-OID")])

    assert compilations(run) == 1
    assert [p.pk if p else None for p in read] == [first.pk, second.pk, None]
    assert read[0] is not None
    assert read[0].amount == first.amount
    with pytest.raises(transaction.TransactionManagementError):
        _locked(first.oid)  # outside a transaction, as select_for_update refuses


def test_the_locked_read_uses_the_callers_own_connection(
    make_payment: Callable[..., Payment],
) -> None:
    """Compiled in one thread, run in another: each thread's own connection."""
    first, second = make_payment(), make_payment()
    statements.bump()
    with transaction.atomic():
        assert _locked(first.oid) is not None
    found: list[Any] = []

    def other() -> None:
        try:
            with transaction.atomic():
                found.append(_locked(second.oid))
                found.append(connections["default"].in_atomic_block)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(30)
    assert found[0] is not None
    assert found[0].pk == second.pk
    assert found[1] is True


def test_a_callback_through_the_batch_captures_once_and_logs(payment: Payment) -> None:
    """The whole path: the callback's payment, decision and log, then its duplicate."""
    fields = callback_for(payment)
    assert services.handle_callback(fields).reply in ("ACTION=POSTAUTH", "APPROVED")
    assert services.handle_callback(fields).reply in ("ACTION=POSTAUTH", "APPROVED")
    fresh = Payment.objects.get(pk=payment.pk)
    assert fresh.captured_amount == payment.amount
    assert fresh.trans_id
    outcomes = sorted(CallbackLog.objects.values_list("outcome", flat=True))
    assert outcomes == ["capture", "duplicate"]
    assert all(log.payment_id == payment.pk for log in CallbackLog.objects.all())


def test_the_locked_read_builds_the_payment_as_the_orm_does(payment: Payment) -> None:
    """Every column (the JSON ones through their converters), the instance's state."""
    payment.data = {"basket": [1, 2], "note": "ok"}
    payment.save()
    statements.bump()
    with transaction.atomic():
        compiled_first, again = _locked(payment.oid), _locked(payment.oid)
    orm = Payment.objects.get(pk=payment.pk)
    for read in (compiled_first, again):
        assert read is not None
        for field in Payment._meta.concrete_fields:
            assert getattr(read, field.attname) == getattr(orm, field.attname), field.name
        assert read.data == {"basket": [1, 2], "note": "ok"}
        assert isinstance(read.request_fields, dict)
        assert not read._state.adding
        assert read._state.db == "default"


def test_a_read_that_cannot_be_kept_goes_through_the_orm_compiled_once_a_call(
    make_payment: Callable[..., Payment],
) -> None:
    """The value twice among the parameters: nothing is kept, each call is the ORM's own
    query (one compilation, not a second one of the placeholder every time)."""
    first, second = make_payment(), make_payment()
    read: list[Payment | None] = []

    def build(oid: str) -> Any:
        return Payment.objects.select_for_update().filter(oid=oid).exclude(reference=oid)

    def run() -> None:
        read.extend(
            statements.first_locked("test-twice", Payment, build, oid)
            for oid in (first.oid, second.oid, first.oid)
        )

    assert compilations(run) == 1 + 3  # the placeholder once, then the ORM's query each call
    assert [p.pk if p else None for p in read] == [first.pk, second.pk, first.pk]
