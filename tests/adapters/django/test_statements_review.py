"""Review of :mod:`cmi_django.statements` (issue 16, goal 3): where a held write could be
lost, blamed on the hook, or sent on another thread's connection.

A held write is sent before the next statement on its connection, so its error surfaces
there (a hook's query): the callback must still treat it as its own write failing (the
ORM would have raised it at ``save``), and a caller that catches it must not let the
transaction commit without it.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from cmi_django import services, statements
from cmi_django.models import CallbackLog, Payment
from django.db import DatabaseError, OperationalError, connection, connections, transaction
from django.db.models import BinaryField

from .conftest import callback_for, postgres_only
from .testapp.models import HookCall

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def failing_once(table: str) -> Iterator[list[str]]:
    """The first statement writing ``table`` fails as a lost connection would."""
    quoted = f"UPDATE {connection.ops.quote_name(table)}"
    failed: list[str] = []

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if quoted in sql and not failed:
            failed.append(sql)
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield failed


def test_a_failing_callback_update_is_failure_not_a_flag(payment: Payment) -> None:
    """The payment's UPDATE fails (the database went away): FAILURE, nothing written,
    nothing flagged, and CMI's retry captures. (Held, the UPDATE is sent in the hook's
    first query: it used to be blamed on the hook and the payment flagged.)"""
    before = payment.state
    fields = callback_for(payment)
    with failing_once(Payment._meta.db_table) as failed:
        outcome = services.handle_callback(fields)
    assert failed, "the UPDATE never ran"
    assert outcome.reply == "FAILURE"
    assert "OperationalError" in outcome.error
    fresh = Payment.objects.get(pk=payment.pk)
    assert fresh.state == before
    assert fresh.attention_reason == ""
    assert not HookCall.objects.filter(oid=payment.oid).exists()
    assert services.handle_callback(fields).reply == "ACTION=POSTAUTH"
    assert Payment.objects.get(pk=payment.pk).captured_amount == payment.amount


@postgres_only
def test_a_held_write_failing_where_it_was_caught_still_fails_the_block(
    payment: Payment,
) -> None:
    """A query that catches the error of the writes sent before it (a hook's ``try``)
    must not let the transaction commit without them."""
    gone = Payment.objects.get(pk=payment.pk)
    gone.pk = 987654

    def write() -> None:
        with transaction.atomic(), statements.batch("default"):
            statements.insert(
                CallbackLog(payment=payment, oid=payment.oid, kind="callback", outcome="x")
            )
            statements.update(gone, ("state",))
            with contextlib.suppress(DatabaseError):  # a hook that carries on
                Payment.objects.filter(pk=payment.pk).exists()  # sends them: the UPDATE fails

    with pytest.raises(DatabaseError, match="did not affect any rows"):
        write()
    assert not CallbackLog.objects.exists()  # the log sent with it rolled back too


@postgres_only
def test_a_field_with_its_own_placeholder_is_written_by_the_orm(
    payment: Payment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrays, ranges, geometries: the ORM wraps the parameter (``%s::type``)."""
    field = CallbackLog._meta.get_field("outcome")
    if hasattr(BinaryField, "get_placeholder_sql"):  # Django 6.1 names it so
        monkeypatch.setattr(
            field,
            "get_placeholder_sql",
            lambda value, compiler, conn: ("upper(%s)", (value,)),
            raising=False,
        )
    else:
        monkeypatch.setattr(
            field, "get_placeholder", lambda value, compiler, conn: "upper(%s)", raising=False
        )
    with transaction.atomic(), statements.batch("default"):
        log = statements.insert(
            CallbackLog(payment=payment, oid=payment.oid, kind="callback", outcome="held")
        )
        payment.state = "captured"
        statements.update(payment, ("state",))
    assert CallbackLog.objects.get(pk=log.pk).outcome == "HELD"  # as the ORM writes it


@postgres_only
def test_a_context_copied_into_another_thread_writes_on_that_threads_connection(
    payment: Payment,
) -> None:
    """The other thread's write belongs to its own transaction (rolled back here), never
    to the batch whose context it copied."""
    errors: list[BaseException] = []

    def other() -> None:
        try:
            with transaction.atomic():
                statements.insert(CallbackLog(payment=payment, oid="other-thread", kind="callback"))
                raise LookupError("rolled back")
        except LookupError:
            pass
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            connections.close_all()

    with transaction.atomic(), statements.batch("default") as held:
        assert held is not None
        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(other,))
        thread.start()
        thread.join(30)
    assert not errors
    assert not CallbackLog.objects.filter(oid="other-thread").exists()


def _nested(payment: Payment, fail: bool) -> None:
    with transaction.atomic(), statements.batch("default"):
        payment.trans_id = "T-OUTER"
        statements.update(payment, ("trans_id",))
        try:
            with transaction.atomic():
                payment.auth_code = "A-INNER"
                statements.update(payment, ("auth_code",))
                statements.insert(
                    CallbackLog(payment=payment, oid=payment.oid, kind="callback", outcome="in")
                )
                if fail:
                    raise LookupError("the savepoint rolls back")
        except LookupError:
            pass


@pytest.mark.parametrize("fail", [False, True], ids=["released", "rolled-back"])
def test_a_savepoint_keeps_or_undoes_exactly_the_writes_held_inside_it(
    make_payment: Callable[..., Payment], fail: bool
) -> None:
    payment = make_payment()
    _nested(payment, fail)
    fresh = Payment.objects.get(pk=payment.pk)
    assert fresh.trans_id == "T-OUTER"
    assert fresh.auth_code == ("" if fail else "A-INNER")
    assert CallbackLog.objects.filter(outcome="in").exists() is not fail


@postgres_only  # SQLite's shared in-memory test database locks whole tables between threads
def test_the_compiled_read_serves_threads_at_once_each_its_own_row(
    make_payment: Callable[..., Payment],
) -> None:
    """gunicorn's threads: one compiled read, run by several threads at once, each
    getting the payment its own oid names (nothing of one run leaks into another)."""
    from cmi_django.inbound import _locked

    payments = [make_payment() for _ in range(4)]
    statements.bump()
    start = threading.Barrier(len(payments))
    wrong: list[str] = []

    def reader(mine: Payment) -> None:
        try:
            start.wait(30)
            for _ in range(25):
                with transaction.atomic():
                    found = _locked(mine.oid)
                if found is None or (found.pk, found.oid) != (mine.pk, mine.oid):
                    wrong.append(f"{mine.oid}: {found and found.oid}")
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            wrong.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=reader, args=(p,)) for p in payments]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave between any two bytecodes
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        sys.setswitchinterval(interval)
    assert wrong == []


@postgres_only
def test_held_writes_store_exactly_what_the_orm_stores(
    make_payment: Callable[..., Payment],
) -> None:
    """The same values through the batch and through the ORM: the same rows."""
    held_payment, orm_payment = make_payment(), make_payment()
    names = ("state", "authorised_amount", "captured_amount", "trans_id", "masked_pan")
    names += ("attention_reason", "updated_at")
    values = {
        "state": "captured",
        "authorised_amount": Decimal("120.50"),
        "captured_amount": Decimal("0.1"),
        "trans_id": "T" * 64,
        "masked_pan": "4000 00** **** 0002",
        "attention_reason": "رفض البطاقة ✓ \ufffd « ' \" %s %% »",
    }
    fields = {"a": "ب", "n": "1e400", "nested": "x\ufffdy", "%s": "%(x)s"}

    def log(payment: Payment) -> CallbackLog:
        return CallbackLog(
            payment=payment, oid=payment.oid, kind="callback", fields=fields, error="é" * 3
        )

    for name, value in values.items():
        setattr(held_payment, name, value)
        setattr(orm_payment, name, value)
    with transaction.atomic(), statements.batch("default") as held:
        assert held is not None
        statements.update(held_payment, names)
        held_log = statements.insert(log(held_payment))
        assert held_log.pk is None  # really held
    with transaction.atomic():
        orm_payment.save(update_fields=names)
        orm_log = CallbackLog.objects.create(
            payment=orm_payment, oid=orm_payment.oid, kind="callback", fields=fields, error="é" * 3
        )

    def row(model: Any, pk: int, drop: tuple[str, ...]) -> dict[str, Any]:
        found = model.objects.filter(pk=pk).values().get()
        return {k: v for k, v in found.items() if k not in drop}

    drop = ("id", "oid", "created_at", "updated_at", "request_fields")  # per payment
    assert row(Payment, held_payment.pk, drop) == row(Payment, orm_payment.pk, drop)
    log_drop = ("id", "oid", "created_at", "payment_id")
    assert row(CallbackLog, held_log.pk, log_drop) == row(CallbackLog, orm_log.pk, log_drop)
    assert CallbackLog.objects.get(pk=held_log.pk).payment_id == held_payment.pk
    fresh = Payment.objects.get(pk=held_payment.pk)
    assert fresh.updated_at == held_payment.updated_at  # auto_now, as save() sets it
    assert CallbackLog.objects.get(pk=held_log.pk).created_at == held_log.created_at
