"""The emulator's SQLite store: sessions, orders, transactions, attempts, callbacks.

One connection shared by every thread, every use under one re-entrant lock, so the
threaded HTTP server, the callback threads and the tests never interleave a read and a
write. Amounts are stored as decimal text, times as ISO 8601 UTC text; a restart with the
same file loses nothing (guide §5: the Merchant Center keeps every order).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "AttemptRow",
    "CallbackRow",
    "OrderRow",
    "SessionRow",
    "Store",
    "TransactionRow",
]

Fields = list[tuple[str, str]]
_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    token TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    oid TEXT NOT NULL,
    fields TEXT NOT NULL,
    created_at TEXT NOT NULL,
    timeout INTEGER NOT NULL,
    state TEXT NOT NULL,
    challenge TEXT NOT NULL DEFAULT '',
    client_ip TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL,
    oid TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount TEXT NOT NULL,
    state TEXT NOT NULL,
    authorized TEXT NOT NULL DEFAULT '0',
    captured TEXT NOT NULL DEFAULT '0',
    refunded TEXT NOT NULL DEFAULT '0',
    masked_pan TEXT NOT NULL DEFAULT '',
    brand TEXT NOT NULL DEFAULT '',
    issuer TEXT NOT NULL DEFAULT '',
    md_status TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    bill_to_name TEXT NOT NULL DEFAULT '',
    flagged INTEGER NOT NULL DEFAULT 0,
    flag_reason TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (client_id, oid)
);
CREATE TABLE IF NOT EXISTS transactions (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    type TEXT NOT NULL,
    amount TEXT NOT NULL,
    response TEXT NOT NULL,
    proc_return_code TEXT NOT NULL,
    err_code TEXT NOT NULL DEFAULT '',
    trans_id TEXT NOT NULL,
    host_ref_num TEXT NOT NULL DEFAULT '',
    auth_code TEXT NOT NULL DEFAULT '',
    voided_at TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    session_token TEXT NOT NULL,
    response TEXT NOT NULL,
    proc_return_code TEXT NOT NULL,
    err_code TEXT NOT NULL DEFAULT '',
    md_status TEXT NOT NULL DEFAULT '',
    fields TEXT NOT NULL,
    callback_url TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS callbacks (
    id INTEGER PRIMARY KEY,
    attempt_id INTEGER NOT NULL REFERENCES attempts(id),
    order_id INTEGER NOT NULL REFERENCES orders(id),
    url TEXT NOT NULL,
    fields TEXT NOT NULL,
    status TEXT NOT NULL,
    http_status INTEGER,
    reply TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    finished_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS transactions_order ON transactions(order_id);
CREATE INDEX IF NOT EXISTS attempts_order ON attempts(order_id);
CREATE INDEX IF NOT EXISTS callbacks_order ON callbacks(order_id);
"""


def _must(value: _T | None) -> _T:
    if value is None:  # pragma: no cover - a row just written is there
        raise RuntimeError("row not found after writing it")
    return value


def _when(text: str) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _fields(text: str) -> Fields:
    return [(str(name), str(value)) for name, value in json.loads(text)]


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A payment request accepted by ``/fim/est3dgate``, waiting for the card form."""

    token: str
    client_id: str
    oid: str
    fields: Fields
    created_at: datetime
    timeout: int
    state: str  # open, challenge, done
    challenge: dict[str, str]
    client_ip: str


@dataclass(frozen=True, slots=True)
class OrderRow:
    id: int
    client_id: str
    oid: str
    currency: str
    amount: Decimal
    state: str  # DECL (no approval yet), PRE, POST, RFND, VOID (guide §5)
    authorized: Decimal
    captured: Decimal
    refunded: Decimal
    masked_pan: str
    brand: str
    issuer: str
    md_status: str
    email: str
    bill_to_name: str
    flagged: bool
    flag_reason: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TransactionRow:
    id: int
    order_id: int
    type: str  # PreAuth, PostAuth, Void, Credit
    amount: Decimal
    response: str
    proc_return_code: str
    err_code: str
    trans_id: str
    host_ref_num: str
    auth_code: str
    voided_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AttemptRow:
    id: int
    order_id: int
    session_token: str
    response: str
    proc_return_code: str
    err_code: str
    md_status: str
    fields: Fields
    callback_url: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CallbackRow:
    id: int
    attempt_id: int
    order_id: int
    url: str
    fields: Fields
    status: str  # PENDING, OK, FAILURE, TIMEOUT, HTTP_ERROR, ERROR, INVALID_REPLY, DROPPED
    http_status: int | None
    reply: str
    note: str
    created_at: datetime
    finished_at: datetime | None


class Store:
    """All persistent state of one emulator (one SQLite file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the lock and one SQLite transaction (re-entrant: nested uses join it)."""
        with self._lock:
            if self._db.in_transaction:
                yield
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, params).fetchone()
            return row

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    def _insert(self, sql: str, params: Sequence[Any]) -> int:
        with self._lock:
            cursor = self._db.execute(sql, params)
            return _must(cursor.lastrowid)

    def _run(self, sql: str, params: Sequence[Any]) -> None:
        with self._lock:
            self._db.execute(sql, params)

    # Sessions -----------------------------------------------------------------------

    def create_session(
        self,
        token: str,
        *,
        client_id: str,
        oid: str,
        fields: Fields,
        now: datetime,
        timeout: int,
        client_ip: str,
    ) -> None:
        self._insert(
            "INSERT INTO sessions (token, client_id, oid, fields, created_at, timeout, state,"
            " client_ip) VALUES (?, ?, ?, ?, ?, ?, 'open', ?)",
            (token, client_id, oid, json.dumps(fields), now.isoformat(), timeout, client_ip),
        )

    def get_session(self, token: str) -> SessionRow | None:
        row = self._one("SELECT * FROM sessions WHERE token = ?", (token,))
        if row is None:
            return None
        return SessionRow(
            token=row["token"],
            client_id=row["client_id"],
            oid=row["oid"],
            fields=_fields(row["fields"]),
            created_at=datetime.fromisoformat(row["created_at"]),
            timeout=int(row["timeout"]),
            state=row["state"],
            challenge=json.loads(row["challenge"]) if row["challenge"] else {},
            client_ip=row["client_ip"],
        )

    def set_session_state(
        self, token: str, state: str, challenge: dict[str, str] | None = None
    ) -> None:
        self._run(
            "UPDATE sessions SET state = ?, challenge = ? WHERE token = ?",
            (state, json.dumps(challenge) if challenge else "", token),
        )

    # Orders -------------------------------------------------------------------------

    def _order(self, row: sqlite3.Row | None) -> OrderRow | None:
        if row is None:
            return None
        return OrderRow(
            id=row["id"],
            client_id=row["client_id"],
            oid=row["oid"],
            currency=row["currency"],
            amount=Decimal(row["amount"]),
            state=row["state"],
            authorized=Decimal(row["authorized"]),
            captured=Decimal(row["captured"]),
            refunded=Decimal(row["refunded"]),
            masked_pan=row["masked_pan"],
            brand=row["brand"],
            issuer=row["issuer"],
            md_status=row["md_status"],
            email=row["email"],
            bill_to_name=row["bill_to_name"],
            flagged=bool(row["flagged"]),
            flag_reason=row["flag_reason"],
            created_at=datetime.fromisoformat(row["created_at"]),
            updated_at=datetime.fromisoformat(row["updated_at"]),
        )

    def get_order(self, client_id: str, oid: str) -> OrderRow | None:
        return self._order(
            self._one("SELECT * FROM orders WHERE client_id = ? AND oid = ?", (client_id, oid))
        )

    def get_order_by_id(self, order_id: int) -> OrderRow | None:
        return self._order(self._one("SELECT * FROM orders WHERE id = ?", (order_id,)))

    def orders_by_oid(self, oid: str) -> list[OrderRow]:
        rows = self._all("SELECT * FROM orders WHERE oid = ? ORDER BY id", (oid,))
        return [order for order in map(self._order, rows) if order is not None]

    def list_orders(self, limit: int = 500) -> list[OrderRow]:
        rows = self._all("SELECT * FROM orders ORDER BY id DESC LIMIT ?", (limit,))
        return [order for order in map(self._order, rows) if order is not None]

    def ensure_order(
        self,
        client_id: str,
        oid: str,
        *,
        currency: str,
        amount: Decimal,
        email: str,
        bill_to_name: str,
        now: datetime,
    ) -> OrderRow:
        with self.transaction():
            found = self.get_order(client_id, oid)
            if found is None:
                self._insert(
                    "INSERT INTO orders (client_id, oid, currency, amount, state, email,"
                    " bill_to_name, created_at, updated_at) VALUES (?, ?, ?, ?, 'DECL', ?, ?,"
                    " ?, ?)",
                    (
                        client_id,
                        oid,
                        currency,
                        str(amount),
                        email,
                        bill_to_name,
                        now.isoformat(),
                        now.isoformat(),
                    ),
                )
                found = self.get_order(client_id, oid)
            return _must(found)

    def update_order(self, order_id: int, now: datetime, **values: Any) -> None:
        allowed = {
            "state",
            "authorized",
            "captured",
            "refunded",
            "masked_pan",
            "brand",
            "issuer",
            "md_status",
            "flagged",
            "flag_reason",
            "amount",
            "currency",
        }
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"unknown order columns {sorted(unknown)}")
        columns = ", ".join(f"{name} = ?" for name in values)
        params = [str(v) if isinstance(v, Decimal) else v for v in values.values()]
        self._run(
            f"UPDATE orders SET {columns}, updated_at = ? WHERE id = ?",  # noqa: S608 - names checked above
            (*params, now.isoformat(), order_id),
        )

    # Transactions -------------------------------------------------------------------

    def add_transaction(
        self,
        order_id: int,
        type_: str,
        amount: Decimal,
        now: datetime,
        *,
        response: str = "Approved",
        proc_return_code: str = "00",
        err_code: str = "",
        trans_id: str,
        host_ref_num: str = "",
        auth_code: str = "",
    ) -> TransactionRow:
        new_id = self._insert(
            "INSERT INTO transactions (order_id, type, amount, response, proc_return_code,"
            " err_code, trans_id, host_ref_num, auth_code, created_at) VALUES (?, ?, ?, ?, ?,"
            " ?, ?, ?, ?, ?)",
            (
                order_id,
                type_,
                str(amount),
                response,
                proc_return_code,
                err_code,
                trans_id,
                host_ref_num,
                auth_code,
                now.isoformat(),
            ),
        )
        found = self._transaction(self._one("SELECT * FROM transactions WHERE id = ?", (new_id,)))
        return _must(found)

    def _transaction(self, row: sqlite3.Row | None) -> TransactionRow | None:
        if row is None:
            return None
        return TransactionRow(
            id=row["id"],
            order_id=row["order_id"],
            type=row["type"],
            amount=Decimal(row["amount"]),
            response=row["response"],
            proc_return_code=row["proc_return_code"],
            err_code=row["err_code"],
            trans_id=row["trans_id"],
            host_ref_num=row["host_ref_num"],
            auth_code=row["auth_code"],
            voided_at=_when(row["voided_at"]),
            created_at=datetime.fromisoformat(row["created_at"]),
        )

    def transactions(self, order_id: int) -> list[TransactionRow]:
        rows = self._all("SELECT * FROM transactions WHERE order_id = ? ORDER BY id", (order_id,))
        return [t for t in map(self._transaction, rows) if t is not None]

    def mark_voided(self, transaction_ids: Sequence[int], now: datetime) -> None:
        for transaction_id in transaction_ids:
            self._run(
                "UPDATE transactions SET voided_at = ? WHERE id = ?",
                (now.isoformat(), transaction_id),
            )

    # Attempts -----------------------------------------------------------------------

    def add_attempt(
        self,
        order_id: int,
        *,
        session_token: str,
        response: str,
        proc_return_code: str,
        err_code: str,
        md_status: str,
        fields: Fields,
        callback_url: str,
        now: datetime,
    ) -> AttemptRow:
        new_id = self._insert(
            "INSERT INTO attempts (order_id, session_token, response, proc_return_code,"
            " err_code, md_status, fields, callback_url, created_at) VALUES (?, ?, ?, ?, ?, ?,"
            " ?, ?, ?)",
            (
                order_id,
                session_token,
                response,
                proc_return_code,
                err_code,
                md_status,
                json.dumps(fields),
                callback_url,
                now.isoformat(),
            ),
        )
        found = self.get_attempt(new_id)
        return _must(found)

    def _attempt(self, row: sqlite3.Row | None) -> AttemptRow | None:
        if row is None:
            return None
        return AttemptRow(
            id=row["id"],
            order_id=row["order_id"],
            session_token=row["session_token"],
            response=row["response"],
            proc_return_code=row["proc_return_code"],
            err_code=row["err_code"],
            md_status=row["md_status"],
            fields=_fields(row["fields"]),
            callback_url=row["callback_url"],
            created_at=datetime.fromisoformat(row["created_at"]),
        )

    def get_attempt(self, attempt_id: int) -> AttemptRow | None:
        return self._attempt(self._one("SELECT * FROM attempts WHERE id = ?", (attempt_id,)))

    def attempts(self, order_id: int) -> list[AttemptRow]:
        rows = self._all("SELECT * FROM attempts WHERE order_id = ? ORDER BY id", (order_id,))
        return [a for a in map(self._attempt, rows) if a is not None]

    # Callbacks ----------------------------------------------------------------------

    def add_callback(
        self, attempt: AttemptRow, url: str, fields: Fields, status: str, now: datetime
    ) -> int:
        return self._insert(
            "INSERT INTO callbacks (attempt_id, order_id, url, fields, status, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (attempt.id, attempt.order_id, url, json.dumps(fields), status, now.isoformat()),
        )

    def finish_callback(
        self,
        callback_id: int,
        *,
        status: str,
        http_status: int | None,
        reply: str,
        note: str,
        now: datetime,
    ) -> None:
        self._run(
            "UPDATE callbacks SET status = ?, http_status = ?, reply = ?, note = ?,"
            " finished_at = ? WHERE id = ?",
            (status, http_status, reply, note, now.isoformat(), callback_id),
        )

    def _callback(self, row: sqlite3.Row | None) -> CallbackRow | None:
        if row is None:
            return None
        return CallbackRow(
            id=row["id"],
            attempt_id=row["attempt_id"],
            order_id=row["order_id"],
            url=row["url"],
            fields=_fields(row["fields"]),
            status=row["status"],
            http_status=row["http_status"],
            reply=row["reply"],
            note=row["note"],
            created_at=datetime.fromisoformat(row["created_at"]),
            finished_at=_when(row["finished_at"]),
        )

    def get_callback(self, callback_id: int) -> CallbackRow | None:
        return self._callback(self._one("SELECT * FROM callbacks WHERE id = ?", (callback_id,)))

    def callbacks(self, order_id: int) -> list[CallbackRow]:
        rows = self._all("SELECT * FROM callbacks WHERE order_id = ? ORDER BY id", (order_id,))
        return [c for c in map(self._callback, rows) if c is not None]
