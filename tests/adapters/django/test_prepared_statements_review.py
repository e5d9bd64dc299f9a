"""Review of the callback's prepared statements (:mod:`cmi_django.statements`).

Each test stands for a way the server a connection's statements reach may no longer hold
what the connection prepared there, or no longer plan it the same way: another server
connection behind a pooler in transaction mode (here ``DEALLOCATE ALL``, which leaves the
client exactly where a fresh server connection would), a migration between two
callbacks. A callback must still be answered and written as without preparing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cmi_django import inbound, services, statements
from cmi_django.models import CallbackLog, Payment
from django.db import DatabaseError, connection, connections
from django.db.models import F

from tests.adapters.pooler import Pooler, pooled
from tests.adapters.recorded import round_trips

from .conftest import callback_for, client_side_binding, postgres_only
from .test_prepared_statements import in_step, paid, prepares_nothing
from .test_statements_fold_review import payments_elsewhere  # noqa: F401 - a fixture

pytestmark = [pytest.mark.django_db(transaction=True), postgres_only, client_side_binding]


@pytest.fixture
def payments(make_payment: Callable[..., Payment]) -> list[Payment]:
    return [make_payment() for _ in range(8)]


@pytest.fixture
def another_read() -> Iterator[Callable[[], None]]:
    """Registers a platform's callback read (the locked read's SQL changes), undone at
    the end."""

    def register(variant: int = 0) -> None:
        column = f"review_amount_{variant}"
        inbound.register_callback_read(
            "review", lambda query: query.annotate(**{column: F("amount")})
        )

    yield register
    inbound._CALLBACK_READS.pop("review", None)
    statements.bump()


def test_a_second_read_prepared_on_another_server_connection_runs_no_write_missing_there(
    payments: list[Payment], another_read: Callable[[], None]
) -> None:
    """The read and the writes are prepared on one server connection; the pooler then
    hands the client another one (``DEALLOCATE ALL``: none of the client's statements
    there) and the read's SQL changes (a platform registers its read). The new read is
    prepared and runs there; the writes prepared on the first server connection must
    not be run as ``EXECUTE`` there (before the fix: "prepared statement does not
    exist", FAILURE, on every callback of that connection)."""
    paid(payments[0], "T1")
    paid(payments[1], "T2")  # the read and the writes prepared
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    another_read()
    for payment, trans_id in zip(payments[2:6], ("T3", "T4", "T5", "T6"), strict=True):
        sent = paid(payment, trans_id)
        assert not any(s.startswith("EXECUTE") for s in sent[1:]), sent
    assert CallbackLog.objects.filter(outcome="capture").count() == 6


@pytest.fixture
def log_id_type() -> Iterator[Callable[[str], None]]:
    """ALTER the callback log's id column (a migration), put back at the end."""

    def alter(kind: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE cmi_django_callbacklog ALTER COLUMN id TYPE {kind}")

    yield alter
    alter("bigint")


def test_a_migration_changing_a_written_tables_id_fails_no_callback_twice(
    payments: list[Payment], log_id_type: Callable[[str], None]
) -> None:
    """A migration changes the type of the callback log's id (``AutoField`` to
    ``BigAutoField`` or back) while a connection holds the prepared writes: their result
    type changed, PostgreSQL refuses to run them ("cached plan must not change result
    type"). The read (of the payment's table) still runs prepared. Before the fix every
    later callback of the connection failed; now at most the first one does (CMI calls
    again) and the connection prepares nothing more."""
    paid(payments[0], "T1")
    paid(payments[1], "T2")
    log_id_type("integer")
    replies: list[str] = []
    fields = callback_for(payments[2], trans_id="T3")
    round_trips(lambda: replies.append(services.handle_callback(fields).reply))
    in_step()
    if replies != ["ACTION=POSTAUTH"]:  # the one failure, rolled back: CMI's next call
        assert replies == ["FAILURE"]
        assert Payment.objects.get(pk=payments[2].pk).state == "redirected"
        again = services.handle_callback(fields)
        assert again.reply == "ACTION=POSTAUTH"
        in_step()
    assert Payment.objects.get(pk=payments[2].pk).state == "captured"
    assert CallbackLog.objects.filter(payment=payments[2], outcome="capture").count() == 1
    for payment, trans_id in ((payments[3], "T4"), (payments[4], "T5")):
        sent = paid(payment, trans_id)
        assert prepares_nothing(sent), sent


@pytest.fixture
def pooler() -> Iterator[Pooler]:
    """The default connection behind a pooler in transaction mode (two server
    connections: :mod:`tests.adapters.pooler`)."""
    with pooled(connection) as pooling:
        yield pooling


def test_behind_a_pooler_the_writes_never_run_on_a_server_connection_lacking_them(
    payments: list[Payment], pooler: Pooler, another_read: Callable[[], None]
) -> None:
    """The read and the writes prepared on one server connection of the pooler; the
    read's SQL changes (a platform registers its read) and the pooler hands the client
    the other server connection, where the new read is prepared and runs. The writes
    are sent as SQL there (before the fix: ``EXECUTE`` of statements prepared on the
    first server connection only: "prepared statement does not exist", FAILURE)."""
    pooler.server = 0
    paid(payments[0], "T1")
    assert paid(payments[1], "T2")[0].startswith("BEGIN; PREPARE cmi_")
    another_read()
    pooler.server = 1
    for payment, trans_id in zip(payments[2:6], ("T3", "T4", "T5", "T6"), strict=True):
        sent = paid(payment, trans_id)
        assert not any(s.startswith("EXECUTE") for s in sent[1:]), sent
    pooler.server = 0
    back = paid(payments[6], "T7")  # the new read is not prepared: sent as SQL anywhere
    assert back[0].startswith("BEGIN; SELECT"), back[0][:80]
    assert CallbackLog.objects.filter(outcome="capture").count() == 7


def test_behind_a_pooler_every_callback_is_answered_and_written_once(
    make_payment: Callable[..., Payment], pooler: Pooler, another_read: Callable[[], None]
) -> None:
    """Sixty callbacks behind a pooler that mostly hands the client the server connection
    it had last (PgBouncer's LIFO) and now and then the other one, over six client
    connections (``CONN_MAX_AGE``); the read's SQL changes three times (a platform
    registers its read), one server connection's statements are dropped once
    (``DEALLOCATE ALL``). Every callback is answered ``ACTION=POSTAUTH``, captures its
    payment and writes one log row."""
    pooler.switching = 0.02
    payments = [make_payment() for _ in range(60)]
    prepared = 0
    for number, payment in enumerate(payments):
        if number % 10 == 0:  # a new client connection: prepared afresh
            connection.close()
        if number % 20 == 15:
            another_read(number)
        if number == 27:
            with connection.cursor() as cursor:
                cursor.execute("DEALLOCATE ALL")
        sent = paid(payment, f"T{number}")
        prepared += sent[0].startswith("BEGIN; EXECUTE cmi_") and sent[1] != "ROLLBACK"
    assert min(pooler.served) > 20  # both server connections served
    assert prepared >= 10  # many callbacks ran prepared
    assert Payment.objects.filter(state="captured").count() == 60
    assert CallbackLog.objects.filter(outcome="capture").count() == 60


def _decided(payment: Payment, *, gone: bool = False) -> tuple[list[str], Exception | None]:
    """The callback's writes to ``payment`` in a transaction of :func:`statements.atomic`
    (its locked read, its UPDATE, its log row); with ``gone``, its row deleted first in
    the same transaction, so that the UPDATE finds no row. What reached the server, and
    the error raised."""
    raised: list[Exception] = []

    def run() -> None:
        try:
            write()
        except Exception as exc:  # noqa: BLE001 - the caller looks at it
            raised.append(exc)

    def write() -> None:
        with statements.atomic("default"):
            locked = inbound._locked(payment.oid)
            assert locked is not None
            if gone:
                with connection.cursor() as cursor:
                    cursor.execute("DELETE FROM cmi_django_payment WHERE id = %s", [locked.pk])
            locked.trans_id = f"T-{locked.pk}"
            statements.update(locked, inbound._DECIDED_FIELDS)
            inbound._write_log(locked, oid=locked.oid, kind="callback", fields={}, reply="x")

    sent = round_trips(run)
    return sent, raised[0] if raised else None


def test_prepared_an_update_that_finds_no_row_still_fails_and_commits_nothing(
    payments: list[Payment],
) -> None:
    """The held UPDATE runs as ``EXECUTE`` of its prepared statement with the ``COMMIT``:
    when it finds no row (``1 / count(*)``) the statement fails, the ``COMMIT`` never
    runs, the error is the ORM's, and the transaction is rolled back (the row deleted in
    it is back, no log row)."""
    _decided(payments[0])
    second, _ = _decided(payments[1])
    assert second[0].startswith("BEGIN; PREPARE cmi_"), second[0][:80]
    assert second[-1].startswith("EXECUTE cmi_")
    assert second[-1].endswith("; COMMIT")
    logs = CallbackLog.objects.count()
    sent, error = _decided(payments[2], gone=True)
    assert isinstance(error, getattr(Payment, "NotUpdated", DatabaseError)), error
    assert "did not affect any rows" in str(error)
    assert sent[-2].startswith("EXECUTE cmi_"), sent
    assert sent[-2].endswith("; COMMIT"), sent
    assert sent[-1] == "ROLLBACK"
    assert Payment.objects.filter(pk=payments[2].pk).exists()  # the DELETE rolled back
    assert not Payment.objects.get(pk=payments[2].pk).trans_id
    assert CallbackLog.objects.count() == logs
    in_step()
    third, _ = _decided(payments[3])  # the connection still runs them prepared
    assert third[0].startswith("BEGIN; EXECUTE cmi_"), third[0][:80]
    assert third[-1].startswith("EXECUTE cmi_"), third[-1][:80]
    assert Payment.objects.get(pk=payments[3].pk).trans_id == f"T-{payments[3].pk}"


#: Values whose text could be read otherwise inside ``EXECUTE name(...)`` than in the
#: statement itself: quotes, backslashes, psycopg's and PostgreSQL's placeholders, a NUL,
#: line separators, JSON, long text. (None is shaped as CMI sends it: the approval is not
#: bound, CMI is asked, in a second transaction, and does not confirm it.)
HOSTILE = {
    "AuthCode": "'); DEALLOCATE ALL; --",
    "HostRefNum": "\\x00\\'%s$1",
    "MaskedPan": "4000\x00***7190",
    "TransId": "T'\\%s",
    "ErrMsg": "E'\\' || $2 || '%%' \u2028 \U0001f4b3 \"q\" \x00",
    "acqStan": '{"a": "\\"", "b": [1, null]}' * 60,
    "EXTRA.TRXDATE": "",
}


def _stored(payment: Payment) -> tuple[Any, ...]:
    fresh = Payment.objects.get(pk=payment.pk)
    log = CallbackLog.objects.get(payment=payment)
    fields = {k: v for k, v in log.fields.items() if k in HOSTILE}
    columns = [getattr(fresh, name) for name in inbound._DECIDED_FIELDS if name != "updated_at"]
    return fresh.state, *columns, fields, log.outcome, log.reply, log.verified, log.error


def test_prepared_hostile_values_are_written_as_without_preparing(
    payments: list[Payment], settings: Any
) -> None:
    """The same hostile callback, once as ``EXECUTE`` of the prepared statements (in both
    of its transactions) and once as SQL: the same reply, payment and log row (A/B)."""
    paid(payments[0], "T1")
    paid(payments[1], "T2")
    rows = []
    for payment, prepared in ((payments[2], True), (payments[3], False)):
        settings.CMI_PREPARED_STATEMENTS = prepared
        fields = callback_for(payment, **HOSTILE)
        replies: list[str] = []
        sent = round_trips(lambda f=fields, r=replies: r.append(services.handle_callback(f).reply))
        assert replies == ["FAILURE"], sent
        opened = [s for s in sent if s.startswith("BEGIN")]
        assert len(opened) == 2, sent  # the read, CMI asked, the read again and the log
        for first in opened:
            assert first.startswith("BEGIN; EXECUTE cmi_" if prepared else "BEGIN; SELECT")
        assert sent[-1].startswith("EXECUTE cmi_" if prepared else "WITH "), sent[-1][:80]
        assert CallbackLog.objects.get(payment=payment).fields == inbound._loggable(fields)
        in_step()
        rows.append(_stored(payment))
    assert rows[0] == rows[1]
    assert rows[0][0] == "redirected"
    assert "\x00" not in str(rows[0])  # the NUL replaced, as ever
    assert rows[0][-5]["acqStan"] == HOSTILE["acqStan"]


@pytest.mark.usefixtures("payments_elsewhere")
def test_prepared_on_a_routed_payments_database_every_callback_captures(
    make_payment: Callable[..., Payment],
) -> None:
    """Payments on their own database ("payments", the routers'), the hook's rows on the
    default one: the callback's statements are prepared on the payments connection (its
    third callback on), which falls back to SQL after a ``DEALLOCATE ALL`` there, rolling
    back only its own transaction: every callback captures, with its hook's row."""
    from psycopg import pq

    from .testapp.models import HookCall

    payments_connection = connections["payments"]
    for number in range(6):
        payment = make_payment()
        if number == 4:
            with payments_connection.cursor() as cursor:
                cursor.execute("DEALLOCATE ALL")
        assert services.handle_callback(callback_for(payment)).reply == "ACTION=POSTAUTH"
        assert Payment.objects.get(pk=payment.pk).state == "captured"
        assert HookCall.objects.filter(oid=payment.oid, method="captured").exists()
        kept = statements._CONNECTIONS[payments_connection.connection]
        assert bool(kept.names) is (number >= 1), number  # prepared with the second
        assert kept.off is (number >= 4), number
        for alias in ("default", "payments"):
            raw = connections[alias].connection
            assert raw.autocommit is connections[alias].get_autocommit() is True
            assert raw.pgconn.transaction_status == pq.TransactionStatus.IDLE
    assert default_prepared() == set()


def default_prepared() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {name for (name,) in cursor.fetchall()}


def test_prepared_on_four_threads_racing_every_payment_is_captured_once(
    make_payment: Callable[..., Payment],
) -> None:
    """Four threads, each on its own connection, send the approvals of the same eight
    payments in different orders (each payment's approval four times at about the same
    moment): each connection prepares its own statements (names of its own) from its
    second callback on, and each payment is captured once, its duplicates answered as
    such."""
    from django.test import Client

    from .conftest import post_callback

    payments = [make_payment() for _ in range(8)]
    approvals = [callback_for(payment, trans_id=f"T{n}") for n, payment in enumerate(payments)]
    replies: list[bytes] = []
    tokens: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def worker(shift: int) -> None:
        try:
            client = Client()
            barrier.wait(timeout=30)
            for number in range(8):
                response = post_callback(client, approvals[(number + shift) % 8])
                with lock:
                    replies.append(response.content)
            kept = statements._CONNECTIONS[connection.connection]
            assert kept.anchor is not None
            assert not kept.off
            with connection.cursor() as cursor:
                cursor.execute("SELECT name FROM pg_prepared_statements")
                names = {name for (name,) in cursor.fetchall()}
            assert names == set(kept.names.values())
            with lock:
                tokens.append(kept.token)
        except BaseException as exc:  # noqa: BLE001 - handed to the test, which fails on it
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(shift * 2,)) for shift in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert replies == [b"ACTION=POSTAUTH"] * 32
    assert len(set(tokens)) == 4
    for payment in payments:
        assert Payment.objects.get(pk=payment.pk).state == "captured"
        outcomes = sorted(
            CallbackLog.objects.filter(payment=payment).values_list("outcome", flat=True)
        )
        assert outcomes == ["capture", "duplicate", "duplicate", "duplicate"]


def test_prepared_a_hook_that_raises_rolls_back_and_the_next_callback_runs_prepared(
    payments: list[Payment], make_payment: Callable[..., Payment]
) -> None:
    """The hook raises after the prepared read and the held UPDATE (sent as ``EXECUTE``
    before the hook's first query, or dropped): the callback is rolled back and answered
    FAILURE, the payment flagged after; the connection is in step and its next callbacks
    still run prepared."""
    paid(payments[0], "T1")
    paid(payments[1], "T2")
    failing = make_payment(data={"hook_raises": True})
    replies: list[str] = []
    fields = callback_for(failing)
    sent = round_trips(lambda: replies.append(services.handle_callback(fields).reply))
    assert replies == ["FAILURE"]
    assert sent[0].startswith("BEGIN; EXECUTE cmi_"), sent[0][:80]
    fresh = Payment.objects.get(pk=failing.pk)
    assert fresh.state == "needs_attention"  # flagged after the rollback
    assert fresh.captured_amount == failing.captured_amount
    in_step()
    again = paid(payments[2], "T3")
    assert again[0].startswith("BEGIN; EXECUTE cmi_"), again[0][:80]
    assert again[-1].startswith("EXECUTE cmi_"), again[-1][:80]


@pytest.fixture
def trans_id_length() -> Iterator[Callable[[int], None]]:
    """ALTER the payment's ``trans_id`` column's length (a migration), put back."""

    def alter(length: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"ALTER TABLE cmi_django_payment ALTER COLUMN trans_id TYPE varchar({length})"
            )

    yield alter
    alter(64)


def test_a_migration_of_the_payment_table_between_callbacks_fails_no_callback(
    payments: list[Payment], trans_id_length: Callable[[int], None]
) -> None:
    """A migration adds a column to the payment's table (the prepared read selects its
    columns by name: it still fits), then changes the length of one it reads (its
    result type changed: "cached plan must not change result type"): the read is sent
    again as SQL, the callback answered and written; the connection prepares no more."""
    paid(payments[0], "T1")
    paid(payments[1], "T2")
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE cmi_django_payment ADD COLUMN review_note text")
    try:
        third = paid(payments[2], "T3")
        assert third[0].startswith("BEGIN; EXECUTE cmi_"), third[0][:80]
        assert third[-1].startswith("EXECUTE cmi_"), third[-1][:80]
        trans_id_length(128)
        fourth = paid(payments[3], "T4")
        assert fourth[0].startswith("BEGIN; EXECUTE cmi_"), fourth[0][:80]
        assert fourth[1] == "ROLLBACK"
        assert fourth[2].startswith("BEGIN; SELECT")
        fifth = paid(payments[4], "T5")
        assert prepares_nothing(fifth), fifth
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE cmi_django_payment DROP COLUMN IF EXISTS review_note")
