"""The server-to-server callback and what the merchant's reply does (guide §4.2.1).

After each attempt (unless ``CallbackResponse=false`` or no ``CallbackURL``), the result
fields are POSTed form-encoded in UTF-8 to the merchant's ``CallbackURL``. The reply body,
whitespace stripped, decides:

- ``ACTION=POSTAUTH`` on an approved result: the order is captured (PostAuth, state POST);
- ``APPROVED``: acknowledged, the order stays PRE;
- ``FAILURE``, a timeout, a non-2xx status, a refused connection or any other text: the
  order stays PRE and is flagged for manual handling (only approved results are flagged:
  there is nothing to handle on a decline).

Each send is recorded (fields as sent, HTTP status, the first 200 characters of the reply,
our verdict), shown in the Merchant Center, and can be sent again ("Réessayer",
guide §4.2.6). Fault switches (:mod:`cmi_core.sandbox.faults`) bend this on purpose.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from functools import partial
from urllib.parse import urlencode

from cmi_core.hashing import Reading
from cmi_core.sandbox.cards import Outcome
from cmi_core.sandbox.clock import Clock
from cmi_core.sandbox.faults import Fault, FaultRegistry
from cmi_core.sandbox.fields import Fields, field, plain, sign
from cmi_core.sandbox.ledger import Ledger, Refusal
from cmi_core.sandbox.merchants import Merchant
from cmi_core.sandbox.results import err_msg, host_msg, new_ids, trx_date
from cmi_core.sandbox.storage import AttemptRow, CallbackRow, Store

__all__ = ["CallbackDispatcher", "is_approval"]

log = logging.getLogger("cmi_core.sandbox")

REPLY_LIMIT = 200
_READ_LIMIT = 64 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """CMI does not follow redirects: a 3xx reply is a failed callback."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def is_approval(fields: Sequence[tuple[str, str]]) -> bool:
    """An approved result: ``ProcReturnCode`` 00 and ``Response`` Approved (any name case)."""
    return field(fields, "ProcReturnCode") == "00" and field(fields, "Response") == "Approved"


class CallbackDispatcher:
    """Sends callbacks, records them and applies the merchant's replies."""

    def __init__(
        self,
        store: Store,
        *,
        ledger: Ledger,
        clock: Clock,
        merchants: Callable[[], Mapping[str, Merchant]],
        faults: FaultRegistry,
        timeout: float,
        reading: Callable[[], Reading] = lambda: Reading.GUIDE,
    ) -> None:
        self.reading = reading  # the emulator's hash reading (docs/sandbox.md)
        self.store = store
        self.ledger = ledger
        self.clock = clock
        self.merchants = merchants
        self.faults = faults
        self.timeout = timeout
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()
        self._stopping = threading.Event()

    # Threads ------------------------------------------------------------------------

    def _spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        thread = threading.Thread(target=self._guard(target), name=name, daemon=True)
        with self._threads_lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return thread

    @staticmethod
    def _guard(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except Exception:  # a background callback never takes the server down
                log.exception("callback thread failed")

        return run

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait for background callbacks (delayed ones included) to finish."""
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping.set()
        self.wait_idle(timeout)

    # Sending ------------------------------------------------------------------------

    def after_attempt(self, attempt: AttemptRow, client_id: str, oid: str) -> None:
        """Send an attempt's callback, bent by the fault switches in force."""
        if not attempt.callback_url:
            return
        fault = self.faults.for_order(client_id, oid)
        if fault.drop:
            self.store.add_callback(
                attempt, attempt.callback_url, attempt.fields, "DROPPED", self.clock.now()
            )
            return
        if fault.delay > 0:

            def later() -> None:
                if not self._stopping.wait(fault.delay):
                    self._deliver(attempt, fault, client_id)

            self._spawn(later, f"callback-delay-{attempt.id}")
        else:
            self._deliver(attempt, fault, client_id)

    def _deliver(self, attempt: AttemptRow, fault: Fault, client_id: str) -> None:
        fields = attempt.fields
        if fault.corrupt_hash:
            fields = self._corrupted(fields, client_id)
        if fault.concurrent:
            threads = [
                self._spawn(
                    partial(self._send_quietly, attempt, fields), f"callback-{attempt.id}-{n}"
                )
                for n in (1, 2)
            ]
            for thread in threads:
                thread.join(self.timeout + 5)
        else:
            self.send(attempt, fields)
        if fault.twice:
            self.send(attempt, fields, note="sent twice (fault switch)")
        if fault.stale and is_approval(attempt.fields):
            self._send_stale(attempt, client_id)

    def _corrupted(self, fields: Fields, client_id: str) -> Fields:
        merchant = self.merchants().get(client_id)
        key = merchant.store_key if merchant else ""
        return sign(plain(fields, self.reading()), key, corrupt=True, reading=self.reading())

    def _send_stale(self, approved: AttemptRow, client_id: str) -> None:
        older = [
            a
            for a in self.store.attempts(approved.order_id)
            if a.id < approved.id and not is_approval(a.fields)
        ]
        if older:
            self.send(older[-1], older[-1].fields, note="old failed attempt sent again (stale)")
            return
        merchant = self.merchants().get(client_id)
        if merchant is None:
            return
        earlier = self.clock.now() - timedelta(minutes=2)
        decline = Outcome("Declined", "05", "ISO8583-05", "1")
        replaced = {
            name.lower(): (name, value)
            for name, value in [
                ("Response", decline.response),
                ("ProcReturnCode", decline.proc_return_code),
                ("AuthCode", ""),
                ("ErrMsg", err_msg(decline)),
                ("ErrCode", decline.err_code),
                ("TransId", new_ids(earlier).trans_id),
                ("EXTRA.TRXDATE", trx_date(earlier)),
                ("EXTRA.HOSTMSG", host_msg(decline)),
                ("SettleId", ""),
            ]
        }
        reading = self.reading()
        fields = [
            replaced.pop(name.lower(), (name, value))
            for name, value in plain(approved.fields, reading)
        ]
        fields += list(replaced.values())
        signed = sign(fields, merchant.store_key, reading=reading)
        self.send(approved, signed, note="made-up old decline (stale)")

    def _send_quietly(self, attempt: AttemptRow, fields: Fields) -> None:
        self.send(attempt, fields, note="sent concurrently (fault switch)")

    def send(self, attempt: AttemptRow, fields: Fields, note: str = "") -> CallbackRow:
        """POST one callback now, record it and apply the reply."""
        url = attempt.callback_url
        callback_id = self.store.add_callback(attempt, url, fields, "PENDING", self.clock.now())
        body = urlencode(fields, encoding="utf-8").encode("ascii")
        request = urllib.request.Request(  # noqa: S310 - the merchant's http(s) CallbackURL
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                "User-Agent": "cmi-sandbox",
            },
        )
        http_status: int | None = None
        reply = ""
        try:
            with _opener.open(request, timeout=self.timeout) as response:
                http_status = response.status
                reply = response.read(_READ_LIMIT).decode("utf-8", "replace")
            status = self._verdict(reply)
        except urllib.error.HTTPError as exc:
            http_status = exc.code
            reply = exc.read(_READ_LIMIT).decode("utf-8", "replace") if exc.fp else ""
            status = "HTTP_ERROR"
        except (TimeoutError, urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            status = "TIMEOUT" if isinstance(reason, TimeoutError) else "ERROR"
            note = (note + "; " if note else "") + type(reason).__name__
        except ValueError as exc:  # an unusable URL
            status = "ERROR"
            note = (note + "; " if note else "") + str(exc)[:100]
        note = self._apply(attempt, fields, status, reply.strip(), note)
        self.store.finish_callback(
            callback_id,
            status=status,
            http_status=http_status,
            reply=reply[:REPLY_LIMIT],
            note=note,
            now=self.clock.now(),
        )
        found = self.store.get_callback(callback_id)
        if found is None:  # pragma: no cover - just written
            raise RuntimeError("callback row vanished")
        return found

    @staticmethod
    def _verdict(reply: str) -> str:
        text = reply.strip()
        if text in ("ACTION=POSTAUTH", "APPROVED"):
            return "OK"
        if text == "FAILURE":
            return "FAILURE"
        return "INVALID_REPLY"

    def _apply(
        self, attempt: AttemptRow, fields: Fields, status: str, reply: str, note: str
    ) -> str:
        """Act on the reply; return the note to record."""
        notes = [note] if note else []
        order = self.store.get_order_by_id(attempt.order_id)
        if order is None or not is_approval(fields):
            if status == "OK" and reply == "ACTION=POSTAUTH":
                notes.append("nothing to capture: not an approved result")
            return "; ".join(notes)
        if status != "OK":
            self.store.update_order(
                order.id, self.clock.now(), flagged=1, flag_reason=f"callback {status}"
            )
            notes.append("order flagged for manual handling")
            return "; ".join(notes)
        if order.flagged:
            self.store.update_order(order.id, self.clock.now(), flagged=0, flag_reason="")
        if reply == "ACTION=POSTAUTH":
            try:
                self.ledger.capture(order.client_id, order.oid)
                notes.append("captured (PostAuth)")
            except Refusal as refusal:
                notes.append(f"no capture: {refusal.message}")
        return "; ".join(notes)

    def retry(self, callback_id: int) -> CallbackRow | None:
        """Send a recorded callback again, as the Merchant Center's "Réessayer" does."""
        previous = self.store.get_callback(callback_id)
        if previous is None:
            return None
        attempt = self.store.get_attempt(previous.attempt_id)
        if attempt is None or not attempt.callback_url:
            return None
        return self.send(attempt, attempt.fields, note=f"retry of callback {callback_id}")
