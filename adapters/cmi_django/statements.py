"""The callback's statements with their SQL built once, its writes sent as one (PostgreSQL).

CMI's callback (guide §4.2.1) runs the same few statements every time: read and lock the
payment, update it, write what the platform owes (Saleor: a report), write the log row.
Through the ORM each is compiled in Python on every callback, which costs more than
running it. Here:

- :func:`first_locked`: the callback's locked read, the ORM's own query compiled once per
  database connection (and per set of registered reads, :func:`bump`), run again with
  the new value; its row becomes models by the steps of the ORM's ``ModelIterable``
  (``from_db``, the ``select_related`` populators, annotations, converters), computed
  once with the query.
- :func:`batch`: inside the callback's transaction on PostgreSQL, :func:`update`,
  :func:`insert` and :func:`probe` hold their statement instead of running it; the batch
  sends them all as one statement (data-modifying ``WITH`` queries) when it ends, or as
  soon as any other statement is about to run on that connection (a hook's query, a
  savepoint, a receiver's read: it then sees every write before it, as if each had run
  at once). One round trip instead of three or four.

What the ORM would do differently is never bypassed: a write goes through the ORM
(``save``) whenever the model has ``pre_save``/``post_save`` receivers or its own
``save``, is written to another database than the batch's (the routers'
``db_for_write``), has a column the database computes (``db_default``, a
``GeneratedField``, a returning field other than the id), inherits from another model,
or holds an expression instead of a value; and everywhere but PostgreSQL. Values are
prepared as the ORM prepares them (``pre_save``: ``auto_now``, ``auto_now_add``; then
``get_db_prep_save``); table and column names come from the models, quoted; every value
is a parameter. An UPDATE that finds no row fails the statement, as ``save`` with
``update_fields`` does. An error in a held write surfaces when the batch sends it, in
the same transaction, which then rolls back as it would have: in whatever statement
sent it (a hook's query: :func:`failure` tells the caller the write was its own), and
again when the batch ends should that statement's caller have caught it. A batch holds
only its own thread's writes (a context copied into another thread carries the batch,
not its connection).
"""

from __future__ import annotations

import functools
import itertools
import re
import secrets
import weakref
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar, cast

from django.conf import settings
from django.db import DatabaseError, connections, router, transaction
from django.db.models import Model, QuerySet
from django.db.models.fields import NOT_PROVIDED
from django.db.models.query import get_related_populators
from django.db.models.signals import post_save, pre_save
from django.db.transaction import TransactionManagementError

__all__ = [
    "Probe",
    "atomic",
    "batch",
    "bump",
    "failure",
    "first_locked",
    "insert",
    "probe",
    "update",
]

M = TypeVar("M", bound=Model)

# -- the locked read ------------------------------------------------------------------------

#: Bumped when what the callback's read joins changes (a registered read or config).
_generation = itertools.count()
_GENERATION = [next(_generation)]
#: Per connection (each thread has its own): (key, alias, generation) -> the read.
_READS: weakref.WeakKeyDictionary[Any, dict[tuple[Hashable, str, int], _Read | str]] = (
    weakref.WeakKeyDictionary()
)
#: A value no caller passes: it marks the parameter each run replaces.
_PLACEHOLDER = "\x00cmi-placeholder\x00"
#: Kept for a read that cannot be compiled once: every call goes through the ORM.
_THROUGH_ORM = "through the ORM"


def bump() -> None:
    """Forget the compiled reads (a platform registered a read or a joined config)."""
    _GENERATION[0] = next(_generation)


class _Read:
    """A compiled read: its SQL and what turns its row into models, as the ORM's
    ``ModelIterable`` does (``from_db``, the ``select_related`` populators, the
    annotations, the fields' converters), all computed once."""

    __slots__ = (
        "annotations",
        "converters",
        "end",
        "from_db",
        "init_list",
        "mark",
        "params",
        "peers",
        "populators",
        "sql",
        "start",
    )

    def __init__(
        self, query: QuerySet[Any], compiler: Any, sql: str, params: tuple[Any, ...], mark: int
    ) -> None:
        self.sql, self.params, self.mark = sql, params, mark
        select, klass_info = compiler.select, compiler.klass_info
        model = klass_info["model"]
        fields = klass_info["select_fields"]
        self.start, self.end = fields[0], fields[-1] + 1
        self.init_list = [column[0].target.attname for column in select[self.start : self.end]]
        # Django 6.1 reads rows in the queryset's fetch mode (and keeps a row's peers)
        fetch_mode = getattr(query, "_fetch_mode", None)
        if fetch_mode is None:
            self.from_db = model.from_db
            self.populators = get_related_populators(klass_info, select, compiler.using)  # type: ignore[call-arg]
        else:
            from django.db.models.query import _get_from_db  # type: ignore[attr-defined]

            self.from_db = _get_from_db(model, fetch_mode)
            self.populators = get_related_populators(klass_info, select, compiler.using, fetch_mode)
        self.peers = bool(getattr(fetch_mode, "track_peers", False))
        self.annotations = list((compiler.annotation_col_map or {}).items())
        selected = [column[0] for column in select[0 : compiler.col_count]]
        self.converters = list(compiler.get_converters(selected).items())

    def first(self, connection: Any, alias: str, value: Any) -> Any:
        params = (*self.params[: self.mark], value, *self.params[self.mark + 1 :])
        held = _open()
        begin = _begins(held) if held is not None and held.alias == alias else None
        with connection.cursor() as cursor:
            if begin is None:
                cursor.execute(self.sql, params)
            else:  # the transaction's first statement: its BEGIN goes with it
                assert held is not None  # noqa: S101 - _begins gave a BEGIN for it
                with _opening(connection.connection):
                    _opening_read(cursor, held, begin, self.sql, params)
            found = cursor.fetchone()
        if found is None:
            return None
        row = list(found)
        for position, (functions, expression) in self.converters:
            converted = row[position]
            for function in functions:
                converted = function(converted, expression, connection)
            row[position] = converted
        instance = self.from_db(alias, self.init_list, row[self.start : self.end])
        if self.peers:
            instance._state.peers = [weakref.ref(instance)]
        for populator in self.populators:
            populator.populate(row, instance)
        for name, position in self.annotations:
            setattr(instance, name, row[position])
        return instance


def first_locked(
    key: Hashable, model: type[M], build: Callable[[Any], QuerySet[M]], value: Any
) -> M | None:
    """``build(value)``'s first row (a ``select_for_update`` queryset of ``model``, at
    most one row matching), its SQL compiled once per ``key``, database and connection.

    ``build`` must give the same query whatever the value (only the value's parameter
    changes); ``key`` names it. The first call compiles ``build`` of a placeholder; when
    the placeholder is not exactly one of the parameters (or the row needs more than
    ``ModelIterable``'s plain steps), nothing is kept and every call goes through the
    ORM. Must run inside a transaction, as ``select_for_update`` must.
    """
    alias = router.db_for_write(model)
    connection = connections[alias]
    if connection.get_autocommit():
        raise TransactionManagementError(
            "select_for_update cannot be used outside of a transaction."
        )
    slot = (key, alias, _GENERATION[0])
    reads = _READS.get(connection)
    if reads is None:
        reads = _READS[connection] = {}
    kept = reads.get(slot)
    if kept is None:
        query = build(_PLACEHOLDER).order_by()[:1]
        compiler = query.query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        marks = [i for i, p in enumerate(params) if p == _PLACEHOLDER]
        plain = query.db == alias and len(marks) == 1 and not compiler.has_extra_select
        composite = getattr(compiler, "has_composite_fields", None)
        if composite is not None:
            plain = plain and not composite([c[0] for c in compiler.select])
        if not plain or query._known_related_objects or query._prefetch_related_lookups:  # type: ignore[attr-defined]
            kept = reads[slot] = _THROUGH_ORM  # not compiled again on every call
        else:
            kept = reads[slot] = _Read(query, compiler, sql, tuple(params), marks[0])
    if isinstance(kept, str):
        found = list(build(value).order_by()[:1])
        return found[0] if found else None
    return cast("M | None", kept.first(connection, alias, value))


# -- prepared statements -------------------------------------------------------------------

#: A read is prepared on a connection the second time it opens a transaction there; a
#: write, with the first read prepared after it was first sent.
_PREPARE_AFTER = 2
#: At most this many statements are prepared on one connection.
_MOST_PREPARED = 32
#: Statements PostgreSQL refused to prepare (their text): never tried again.
_REFUSED: set[str] = set()
#: The classes of errors after which the opening read is sent again, unprepared: a
#: statement missing on the server or already there (a pooler handing the client another
#: server connection), one that cannot be prepared, a plan that no longer fits.
_SENT_AGAIN = ("26", "42", "0A")


class _Prepared:
    """The statements one psycopg connection has prepared on its server connection
    (SQL ``PREPARE`` and ``EXECUTE``, sent in the same queries as the ``BEGIN`` and the
    ``COMMIT``), under names of its own: a random part, so that behind a pooler in
    transaction mode another client's statement is never taken for this one's.

    Every statement is prepared in the query that opens a transaction with the read's
    ``EXECUTE`` (when it fails, the read is sent again unprepared: nothing else has run
    in the transaction). A write is run prepared only in a transaction whose read ran
    prepared, so on the server connection where all of this client's statements were
    prepared (a statement is prepared once, and only with the read's ``EXECUTE``, which
    fails anywhere else). That holds for one read only: a second read's ``PREPARE`` and
    ``EXECUTE``, sent together, succeed on any server connection, so only the first read
    prepared here (``anchor``) is ever prepared or run prepared; another read (its SQL
    changed: :func:`bump`) is sent as SQL, and so are its transaction's writes. Once
    anything fails, the read or a write run prepared, nothing more is prepared or run
    prepared on this connection (``off``)."""

    __slots__ = ("__weakref__", "anchor", "names", "off", "runs", "token", "waiting")

    def __init__(self) -> None:
        self.token = secrets.token_hex(8)
        #: The read prepared here: every statement was prepared with its ``EXECUTE``.
        self.anchor: str | None = None
        #: statement text -> its name (prepared on the server connection)
        self.names: dict[str, str] = {}
        #: read text -> the times it opened a transaction unprepared
        self.runs: dict[str, int] = {}
        #: writes to prepare with the next prepared read: text -> name
        self.waiting: dict[str, str] = {}
        self.off = False

    def _name(self, sql: str) -> str | None:
        """A new name for ``sql``, or None when it may not be prepared."""
        count = len(self.names) + len(self.waiting)
        if sql in _REFUSED or count >= _MOST_PREPARED or _numbered(sql) is None:
            return None
        return f"cmi_{self.token}_{count}"

    def read(self, sql: str) -> tuple[str | None, list[tuple[str, str]]]:
        """The opening read ``sql``'s name (None: sent unprepared) and what to prepare with
        it (text, name)."""
        if self.anchor is not None and sql != self.anchor:
            return None, []  # its EXECUTE would not tell which server connection this is
        name = self.names.get(sql)
        preparing: list[tuple[str, str]] = []
        if name is None:
            runs = self.runs[sql] = self.runs.get(sql, 0) + 1
            if runs < _PREPARE_AFTER or (name := self._name(sql)) is None:
                return None, []
            preparing.append((sql, name))
        return name, preparing + list(self.waiting.items())

    def write(self, sql: str) -> str | None:
        """The name of write ``sql`` prepared here, or None (then it is to be prepared
        with the next prepared read)."""
        name = self.names.get(sql)
        if name is None and sql not in self.waiting:
            new = self._name(sql)
            if new is not None:
                self.waiting[sql] = new
        return name

    def prepared(self, done: list[tuple[str, str]]) -> None:
        for sql, name in done:
            self.names[sql] = name
            self.waiting.pop(sql, None)


#: Per psycopg connection: what it has prepared.
_CONNECTIONS: weakref.WeakKeyDictionary[Any, _Prepared] = weakref.WeakKeyDictionary()


def _prepared_on(raw: Any) -> _Prepared | None:
    """What psycopg connection ``raw`` has prepared; None when it prepares nothing (the
    ``CMI_PREPARED_STATEMENTS`` setting is False, or something failed on it)."""
    if not getattr(settings, "CMI_PREPARED_STATEMENTS", True):
        return None
    kept = _CONNECTIONS.get(raw)
    if kept is None:
        kept = _CONNECTIONS[raw] = _Prepared()
    return None if kept.off else kept


_MARK = re.compile(r"%[%s]")


@functools.lru_cache(maxsize=256)
def _numbered(sql: str) -> str | None:
    """``sql`` with its ``%s`` as ``$1``, ``$2``... for ``PREPARE`` (``%%`` kept: the query
    goes through psycopg's formatting with the ``EXECUTE``'s values); None when it holds
    another ``%`` form."""
    if "%" in _MARK.sub("", sql):
        return None
    count = itertools.count(1)
    return _MARK.sub(lambda m: m.group() if m.group() == "%%" else f"${next(count)}", sql)


def _executed(name: str, params: Sequence[Any]) -> str:
    """``EXECUTE`` of statement ``name`` with ``params`` (psycopg's placeholders)."""
    return f"EXECUTE {name}({', '.join(['%s'] * len(params))})" if params else f"EXECUTE {name}"


def _sqlstate(exc: BaseException) -> str:
    """The SQLSTATE of a database error Django raised (psycopg 3 names it ``sqlstate``,
    psycopg2 ``pgcode``), or ``""``."""
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None) or ""


def _opening_read(cursor: Any, held: Batch, begin: str, sql: str, params: Sequence[Any]) -> None:
    """Send the read ``sql`` that opens ``held``'s transaction, with its ``BEGIN`` (on a
    connection that prepares, as ``EXECUTE`` of its prepared statement when it can be:
    :func:`_executed_read`); leave ``cursor`` on the read's rows."""
    kept = held.kept = _prepared_on(held.connection.connection)
    if kept is None or not _executed_read(cursor, held, kept, f"{begin}; ", (sql, params)):
        cursor.execute(f"{begin}; {sql}", params)
        cursor.nextset()


def _executed_read(
    cursor: Any, held: Batch, kept: _Prepared, begin: str, read: tuple[str, Sequence[Any]]
) -> bool:
    """Send ``begin`` and the read (``sql``, ``params``) as ``EXECUTE`` of its statement
    prepared on the connection, preparing first what is due (:class:`_Prepared`). False
    when the read is
    to be sent as SQL: not prepared here, or the server refused the query (then rolled
    back: nothing else ran in the transaction, and the connection prepares nothing more)."""
    sql, params = read
    name, preparing = kept.read(sql)
    if name is None:
        return False
    prepares = "".join(f"PREPARE {n} AS {_numbered(s)}; " for s, n in preparing)
    try:
        cursor.execute(f"{begin}{prepares}{_executed(name, params)}", list(params))
    except DatabaseError as exc:
        kept.off = True  # whatever this query left prepared is never relied on
        held.kept = None
        code = _sqlstate(exc)
        if preparing and code.startswith("42") and code != "42P05":
            _REFUSED.update(text for text, _ in preparing)
        if not code.startswith(_SENT_AGAIN):
            raise
        held.connection.connection.execute("ROLLBACK")
        return False
    for _ in range(1 + len(preparing)):  # the BEGIN's result, each PREPARE's
        cursor.nextset()
    kept.prepared(preparing)
    kept.anchor = sql
    held.on_server = True
    return True


# -- held writes ----------------------------------------------------------------------------


class Probe:
    """A scalar read held with a batch (:func:`probe`): ``value`` once the batch sent it."""

    __slots__ = ("_value", "expression", "params")

    def __init__(self, expression: str, params: Sequence[Any]) -> None:
        self.expression = expression
        self.params = list(params)
        self._value: Any = _UNSET

    @property
    def value(self) -> Any:
        if self._value is _UNSET:
            raise RuntimeError("the probe has not been read yet (its batch is still open)")
        return self._value


_UNSET = object()


class _Write:
    __slots__ = ("instance", "params", "returns_id", "sql", "table")

    def __init__(self, sql: str, params: list[Any], instance: Model, returns_id: bool) -> None:
        self.sql = sql
        self.params = params
        self.instance = instance
        self.returns_id = returns_id
        self.table = instance._meta.db_table


class Batch:
    """The writes and probes held on one connection until :meth:`send`."""

    def __init__(self, alias: str, owns: bool = False) -> None:
        self.alias = alias
        self.connection = connections[alias]
        #: Opened by :func:`atomic` with its transaction (its BEGIN and COMMIT may be folded).
        self.owns = owns
        self.writes: list[_Write] = []
        self.probes: list[Probe] = []
        self.sending = False
        #: The statements prepared on the connection, when the transaction's opening read
        #: went through :func:`_opening_read` on a connection that prepares.
        self.kept: _Prepared | None = None
        #: Whether that read ran prepared: the writes may then run prepared too.
        self.on_server = False
        #: The error of a send that failed: raised again when the batch ends, should the
        #: statement it surfaced in (a hook's query) have caught it (:func:`failure`).
        self.failed: BaseException | None = None

    def before_statement(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        """The connection's execute wrapper: send what is held before any other statement."""
        if not self.sending and (self.writes or self.probes):
            self.send()
        return execute(sql, params, many, context)

    def send(self, commit: bool = False) -> None:
        """Run every held write and probe as one statement (module docstring); with
        ``commit``, the statement ends the transaction (``...; COMMIT``)."""
        writes, probes = self.writes, self.probes
        self.writes, self.probes = [], []
        if not writes and not probes:
            return
        if len(writes) == 1 and not probes and not commit:  # one write: its own statement
            self._run(self._as_sent(writes[0].sql, writes[0].params), writes[0].params, writes)
            return
        params: list[Any] = []
        for write in writes:
            params += write.params
        for held in probes:
            params += held.params
        shape = (tuple((w.sql, w.returns_id) for w in writes), tuple(p.expression for p in probes))
        sql = self._as_sent(_combined(*shape), params)
        self._run(f"{sql}; COMMIT" if commit else sql, params, writes, probes)

    def _as_sent(self, sql: str, params: Sequence[Any]) -> str:
        """``sql``, or ``EXECUTE`` of its prepared statement when the transaction's read
        ran prepared and ``sql`` was prepared with it (:class:`_Prepared`)."""
        kept = self.kept
        if kept is None:
            return sql
        name = kept.write(sql)
        return _executed(name, params) if name is not None and self.on_server else sql

    def _run(
        self, sql: str, params: list[Any], writes: list[_Write], probes: Sequence[Probe] = ()
    ) -> None:
        self.sending = True
        try:
            with self.connection.cursor() as cursor:
                try:
                    cursor.execute(sql, params)
                except DatabaseError as exc:
                    code = _sqlstate(exc)
                    # an UPDATE that found no row (``1 / count(*)``: see _combined)
                    if code == _NO_ROW:
                        raise _not_updated(writes) from exc
                    if self.kept is not None and self.on_server and code.startswith(_SENT_AGAIN):
                        # a statement prepared here and no longer runnable (a migration
                        # changed the type of a column it returns: "cached plan must not
                        # change result type"); this callback fails (CMI calls again),
                        # the connection's next ones are sent as SQL
                        self.kept.off = True
                    raise
                row = cursor.fetchone() or (None,)
            for write, got in zip(writes, row, strict=False):
                if write.returns_id:
                    write.instance.pk = got
                    write.instance._state.adding = False
                    write.instance._state.db = self.alias
                elif got != 1:
                    raise _not_updated([write])
        except BaseException as exc:
            self.failed = exc
            raise
        finally:
            self.sending = False
        for held, got in zip(probes, row[len(writes) :], strict=True):
            held._value = got


_NO_ROW = "22012"  # division_by_zero
_NO_ROW_TEXT = "Save with update_fields did not affect any rows."


def _not_updated(writes: Sequence[_Write]) -> DatabaseError:
    """The error ``save(update_fields=...)`` raises when its UPDATE found no row: the
    model's ``NotUpdated`` from Django 6.0 (a ``DatabaseError``), else ``DatabaseError``."""
    for write in writes:
        if not write.returns_id:
            error = getattr(type(write.instance), "NotUpdated", DatabaseError)
            return cast("DatabaseError", error(_NO_ROW_TEXT))
    return DatabaseError(_NO_ROW_TEXT)


@functools.lru_cache(maxsize=64)
def _combined(writes: tuple[tuple[str, bool], ...], probes: tuple[str, ...]) -> str:
    """One statement: each write a data-modifying ``WITH`` query, then one row of what
    each gave (an INSERT's id; for an UPDATE ``1 / count(*)``, which fails the statement
    when it found no row, so that a ``COMMIT`` sent with it never runs) and each probe's
    value."""
    parts: list[str] = []
    columns: list[str] = []
    for index, (sql, returns_id) in enumerate(writes):
        name = f"cmi_w{index}"
        parts.append(f"{name} AS ({sql})")
        # S608: the statement's own names, no input
        columns.append(f"(SELECT {'max(id)' if returns_id else '1 / count(*)'} FROM {name})")  # noqa: S608
    columns += [f"({expression})" for expression in probes]
    head = f"WITH {', '.join(parts)} " if parts else ""
    return f"{head}SELECT {', '.join(columns)}"


_BATCH: ContextVar[Batch | None] = ContextVar("cmi_batch", default=None)


@contextmanager
def atomic(using: str) -> Iterator[Batch | None]:
    """``transaction.atomic(using)`` with a :func:`batch` inside. When this block is the
    outermost transaction on PostgreSQL through psycopg 3 with client-side binding (the
    default), its first statement, a :func:`first_locked` read, carries the ``BEGIN``,
    and the held writes carry the ``COMMIT``: two round trips fewer. The ``COMMIT`` goes
    only when the block ends normally with nothing asking Django to roll back and no
    held write having failed (even one whose error was caught); Django's own commit then
    finds the transaction closed and sends nothing. Once Django is to roll back, a write
    is refused as the ORM refuses it, never held then dropped."""
    owns = not connections[using].in_atomic_block
    with transaction.atomic(using=using), batch(using, _owns=owns) as held:
        yield held


@contextmanager
def batch(using: str, *, _owns: bool = False) -> Iterator[Batch | None]:
    """Hold :func:`update`, :func:`insert` and :func:`probe` on database ``using`` until
    the block ends (then one statement), or until another statement runs on it.

    Open it inside the transaction, so the writes go before the commit. Yields None
    (nothing is held) on a database other than PostgreSQL, outside a transaction and
    inside another batch.
    When the block raises, what is held is dropped: the caller's transaction rolls back.
    """
    connection = connections[using]
    if (
        connection.vendor != "postgresql"
        or not connection.in_atomic_block
        or _BATCH.get() is not None
    ):
        yield None
        return
    held = Batch(using, owns=_owns)
    token = _BATCH.set(held)
    try:
        with connection.execute_wrapper(held.before_statement):
            yield held
            # Django rolls the transaction back now, or the batch will (below): a send
            # failed and was caught (a savepoint rolled back may have made the
            # transaction usable again: the rest must not go with a COMMIT)
            if connection.needs_rollback or held.failed is not None:
                held.writes, held.probes = [], []
            held.send(commit=held.owns and _may_commit(connection))
        if held.failed is not None:  # caught where it surfaced: the transaction must not commit
            raise held.failed
    finally:
        _BATCH.reset(token)


def failure() -> BaseException | None:
    """The error of the open batch's writes when sending them failed, else None.

    Held writes are sent before the next statement on the connection, so their error
    surfaces in that statement: a platform hook's query, for instance. It is still the
    caller's write that failed (the ORM would have raised it at :func:`update`), not the
    hook: the callback asks here before it blames the hook."""
    held = _BATCH.get()
    return None if held is None else held.failed


def _client_side(raw: Any) -> bool:
    """Is ``raw`` a psycopg 3 connection whose cursors bind on the client (they send
    several statements as one query)? Not psycopg2, whose ``commit`` trusts its own
    record of the transaction, nor Django's ``server_side_binding``."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg2 only
        return False
    factory = getattr(raw, "cursor_factory", None)
    return (
        isinstance(raw, psycopg.Connection)
        and isinstance(factory, type)
        and issubclass(factory, psycopg.ClientCursor)
    )


def _begins(held: Batch) -> str | None:
    """The BEGIN psycopg would send before the next statement, when ``held`` owns its
    transaction and nothing has been sent in it yet; else None."""
    raw = held.connection.connection
    if not held.owns or raw is None or not _client_side(raw) or raw.autocommit:
        return None
    from psycopg import pq

    if raw.pgconn.transaction_status != pq.TransactionStatus.IDLE:
        return None
    # psycopg's own BEGIN for this connection's settings (Connection._get_tx_start_command)
    parts = ["BEGIN"]
    if raw.isolation_level is not None:
        parts.append(f"ISOLATION LEVEL {raw.isolation_level.name.replace('_', ' ')}")
    if raw.read_only is not None:
        parts.append("READ ONLY" if raw.read_only else "READ WRITE")
    if raw.deferrable is not None:
        parts.append("DEFERRABLE" if raw.deferrable else "NOT DEFERRABLE")
    return " ".join(parts)


@contextmanager
def _opening(raw: Any) -> Iterator[None]:
    """Let the next statement open the transaction itself: psycopg is switched to
    autocommit (it would send a BEGIN of its own), and back if the BEGIN never reached
    the server. Once it did, psycopg commits and rolls back by the server's state of the
    transaction (``commit``/``rollback``), and Django's outermost atomic block turns
    autocommit on again when it ends."""
    from psycopg import pq

    raw.autocommit = True
    try:
        yield
    finally:
        if raw.pgconn.transaction_status == pq.TransactionStatus.IDLE:
            raw.autocommit = False


def _may_commit(connection: Any) -> bool:
    """May the batch's statement end the transaction? Only at the end of the outermost
    atomic block, which would commit now (no savepoint; :func:`batch` has already
    dropped what was held when Django is to roll back or a send failed), on a psycopg 3
    connection binding on the client."""
    raw = connection.connection
    return (
        len(connection.atomic_blocks) == 1
        and not connection.savepoint_ids
        and raw is not None
        and _client_side(raw)
    )


def _held(model: type[Model], instance: Model) -> Batch | None:
    """The open batch ``instance``'s write may join, or None (then the ORM writes it).

    None too once Django is to roll the transaction back (``needs_rollback``: a block
    without a savepoint failed, a caught error of the ORM's own write): the ORM then
    refuses the write, as it would have without a batch, instead of the batch dropping
    it at its end with no error (the callback would answer CMI with nothing committed).
    What is held already is sent first when the write depends on it: an UPDATE of a row
    it updates (one statement may change a row once), a row that refers to one it
    inserts (whose id the database has not given yet). Then, as ``save`` does, a related
    object without an id is refused and a related object's id is copied to its column.
    """
    held = _open()
    if held is None or not _plain(model):
        return None
    if held.connection.needs_rollback:  # the ORM refuses it (TransactionManagementError)
        return None
    if router.db_for_write(model, instance=instance) != held.alias:
        return None
    if held.writes:
        new = {id(w.instance) for w in held.writes if w.returns_id}
        table = model._meta.db_table
        same = any(
            w.instance is instance
            or (not w.returns_id and w.table == table and w.instance.pk == instance.pk)
            for w in held.writes
        )
        cache = instance._state.fields_cache
        if same or any(id(related) in new for related in cache.values()):
            held.send()
    instance._prepare_related_fields_for_save(operation_name="save")  # type: ignore[attr-defined]
    return held


def _open() -> Batch | None:
    """The batch open in this context, if it is this thread's: a context copied into
    another thread (``contextvars.copy_context``, ``asgiref``) carries the batch, not its
    connection, whose transaction that thread is not in."""
    held = _BATCH.get()
    if held is None or connections[held.alias] is not held.connection:
        return None
    return held


def _plain(model: type[Model]) -> bool:
    """Does ``model`` save as Django's ``Model.save`` does, with nothing the database
    computes but the id, and no save receivers (module docstring)? The receivers and
    ``save`` are looked at every time, the model's fields once."""
    return (
        model.save is Model.save
        and _plain_fields(model)
        and not pre_save.has_listeners(model)
        and not post_save.has_listeners(model)
    )


@functools.cache
def _plain_fields(model: type[Model]) -> bool:
    meta = model._meta
    return (
        not meta.parents
        and not meta.proxy
        and meta.db_returning_fields == [meta.pk]
        and not any(field.db_default is not NOT_PROVIDED for field in meta.concrete_fields)
    )


_SQL: dict[tuple[Any, ...], str] = {}


def _prepared(instance: Model, fields: Sequence[Any], add: bool, alias: str) -> list[Any] | None:
    """The values the ORM would write, or None when one is an expression or its field
    has its own placeholder (``get_placeholder``, ``get_placeholder_sql`` from Django
    6.1: arrays, ranges, geometries, binary data)."""
    connection = connections[alias]
    values = []
    for field in fields:
        # the ORM wraps its parameter (a cast...): get_placeholder, Django 6.1's _sql
        if hasattr(field, "get_placeholder") or hasattr(field, "get_placeholder_sql"):
            return None
        value = field.pre_save(instance, add)
        if hasattr(value, "resolve_expression"):
            return None
        values.append(field.get_db_prep_save(value, connection))
    return values


def update(instance: Model, fields: Iterable[str]) -> None:
    """``instance.save(update_fields=fields)``, held in the open batch when it can be."""
    names = tuple(fields)
    model = type(instance)
    held = _held(model, instance)
    if held is None or instance.pk is None:
        instance.save(update_fields=names)
        return
    meta = model._meta
    key = ("update", held.alias, model, names)
    sql = _SQL.get(key)
    columns: list[Any] = [meta.get_field(name) for name in names]
    values = _prepared(instance, columns, False, held.alias)
    if values is None or any(not field.concrete or field.primary_key for field in columns):
        instance.save(update_fields=names)
        return
    if sql is None:
        quote = held.connection.ops.quote_name
        sets = ", ".join(f"{quote(field.column)} = %s" for field in columns)
        pk = quote(str(meta.pk.column))
        # S608: the model's table and column names, quoted; values are parameters
        sql = _SQL[key] = f"UPDATE {quote(meta.db_table)} SET {sets} WHERE {pk} = %s RETURNING 1"  # noqa: S608
    pk_value = meta.pk.get_db_prep_value(instance.pk, held.connection)
    held.writes.append(_Write(sql, [*values, pk_value], instance, returns_id=False))


def insert(instance: M) -> M:
    """``instance.save()`` of a new row (its id generated), held in the open batch when it
    can be; ``instance.pk`` is set when the batch sends it."""
    model = type(instance)
    held = _held(model, instance)
    meta = model._meta
    if held is None or instance.pk is not None:
        instance.save(force_insert=True)
        return instance
    columns = [field for field in meta.concrete_fields if not field.primary_key]
    values = _prepared(instance, columns, True, held.alias)
    if values is None:
        instance.save(force_insert=True)
        return instance
    key = ("insert", held.alias, model)
    sql = _SQL.get(key)
    if sql is None:
        quote = held.connection.ops.quote_name
        names = ", ".join(quote(str(field.column)) for field in columns)
        marks = ", ".join(["%s"] * len(columns))
        pk = quote(str(meta.pk.column))
        # S608: the model's table and column names, quoted; values are parameters
        sql = _SQL[key] = (
            f"INSERT INTO {quote(meta.db_table)} ({names}) VALUES ({marks}) RETURNING {pk} AS id"  # noqa: S608
        )
    held.writes.append(_Write(sql, values, instance, returns_id=True))
    return instance


def probe(
    expression: str, params: Sequence[Any], *, using: str, reads: Iterable[type[Model]]
) -> Probe:
    """A scalar SQL expression (``EXISTS(SELECT ...)``) read with the open batch's
    statement on ``using``, or at once when none is open there. Read no earlier than
    now, no later than the batch's end, in the same transaction, and after every write
    held before it to a table of the models it ``reads`` (a statement's ``WITH``
    queries do not see each other's writes: what is held there is sent first)."""
    found = Probe(expression, params)
    held = _open()
    if held is not None and held.alias == using and not held.connection.needs_rollback:
        tables = {model._meta.db_table for model in reads}
        if any(write.table in tables for write in held.writes):
            held.send()
        held.probes.append(found)
        return found
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT ({expression})", list(params))
        found._value = cursor.fetchone()[0]
    return found
