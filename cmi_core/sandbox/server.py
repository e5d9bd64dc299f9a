"""The emulator's HTTP server and the :class:`Sandbox` object that owns everything.

Routes (all answers are HTML unless said otherwise):

==========================================  =============================================
``POST /fim/est3dgate``                     the merchant's payment request (guide §4.1)
``POST /fim/est3dgate/pay``                 the card form
``POST /fim/est3dgate/3ds``                 the 3-D Secure challenge code
``POST /fim/api``                           the CC5 XML API (PROTOCOL.md §5), XML
``GET /merchant/``                          Merchant Center: orders
``GET /merchant/order/<oid>``               one order, its transactions and callbacks
``POST /merchant/callback/<id>/retry``      "Réessayer": send a callback again
``GET /demo/``, ``POST /demo/callback``,
``POST /demo/ok``, ``POST /demo/fail``      the built-in demo shop
``GET``/``POST /sandbox/faults``            fault switches, JSON
``GET /sandbox/health``                     ``{"status": "ok"}``
==========================================  =============================================

Bad input never crashes a handler: unknown paths get 404, wrong methods 405, bodies over
1 MiB 413, unreadable forms 400, all as short HTML pages. A client that stops sending
(a body shorter than its ``Content-Length``) is cut off after ``request_timeout``
seconds (408); one that goes away mid-answer is forgotten quietly.

The two state-changing developer routes (``/merchant/callback/<id>/retry`` and
``POST /sandbox/faults``) refuse cross-site requests (403): an ``Origin`` (or, without
it, a ``Referer``) must name the host the request was sent to; ``/sandbox/faults`` takes
JSON (which no other site can post without a CORS preflight, and the preflight gets
405), or a form only with such a same-origin header.

Before any of that, every request must name one of the emulator's own hosts in its
``Host`` header (``localhost``, an IP address, the ``--host`` name, the operator's
``allowed_hosts``; :mod:`cmi_core.sandbox.hosts`), else 421 (400 when it has none or a
malformed one), plain text, the connection closed, nothing read or changed: a page whose
DNS name was rebound to 127.0.0.1 is same-origin with itself, but still sends its own name.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

from cmi_core.sandbox.callbacks import CallbackDispatcher
from cmi_core.sandbox.clock import Clock, SystemClock
from cmi_core.sandbox.demo import DemoShop
from cmi_core.sandbox.faults import Fault, FaultRegistry
from cmi_core.sandbox.fields import ascii_digits
from cmi_core.sandbox.gateway import Gateway, Page
from cmi_core.sandbox.hosts import HostPolicy
from cmi_core.sandbox.ledger import Ledger
from cmi_core.sandbox.merchant_center import order_page, orders_page
from cmi_core.sandbox.merchants import DEFAULT_MERCHANT, Merchant, index_merchants
from cmi_core.sandbox.pages import e, plain_page
from cmi_core.sandbox.storage import OrderRow, Store
from cmi_core.sandbox.xmlapi import XmlApi

__all__ = ["MAX_BODY", "Sandbox"]

log = logging.getLogger("cmi_core.sandbox")

MAX_BODY = 1024 * 1024
MAX_FIELDS = 1000
REQUEST_TIMEOUT = 10.0  # seconds a connection may stay silent (request line, headers, body)
DB_NAME = "sandbox.sqlite3"
_HOST_HEADER = re.compile(r"^[A-Za-z0-9._\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")
#: Refused Host names logged as warnings (the first time each); later ones at debug level.
MAX_REPORTED_HOSTS = 100


class BadRequest(Exception):  # noqa: N818 - an HTTP answer, not a failure of ours
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def parse_form(body: bytes) -> list[tuple[str, str]]:
    """Decode a form-encoded body in the charset its ``encoding`` field names (utf-8)."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(400, "The form is not URL-encoded text.") from exc
    try:
        first = parse_qsl(
            text, keep_blank_values=True, encoding="latin-1", max_num_fields=MAX_FIELDS
        )
        encoding = next((v for k, v in first if k.lower() == "encoding"), "") or "utf-8"
        codecs.lookup(encoding)
        return parse_qsl(
            text,
            keep_blank_values=True,
            encoding=encoding,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except LookupError as exc:
        raise BadRequest(400, "Unknown encoding.") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(400, "The form cannot be decoded.") from exc


def same_origin(headers: Message) -> bool | None:
    """Does the request come from a page of this host? None when the client does not say.

    Browsers send ``Origin`` with every cross-site POST (``Origin: null`` from sandboxed
    or privacy-stripped contexts, refused here); without it, ``Referer`` is used. Either
    must name the host the request was sent to (its ``Host`` header). Scripts (curl,
    ``requests``) send neither: None, left to each route.
    """
    claimed = headers.get("Origin")
    if claimed is None:
        claimed = headers.get("Referer")
    if claimed is None:
        return None
    parts = urlsplit(claimed.strip())
    host = headers.get("Host", "").strip().lower()
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc.lower() == host


def _is_json(content_type: str) -> bool:
    """``application/json`` or ``application/*+json`` by its MIME essence (not a substring:
    ``text/plain; x=json`` is a form any site may post)."""
    essence = content_type.split(";", 1)[0].strip().lower()
    return essence == "application/json" or (
        essence.startswith("application/") and essence.endswith("+json")
    )


def simple_page(status: int, message: str) -> str:
    phrase = HTTPStatus(status).phrase
    body = f"<h1>{status} {e(phrase)}</h1><p id='message'>{e(message)}</p>"
    return plain_page(f"{status} {phrase}", body, "en")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "cmi-sandbox"
    sys_version = ""

    # Plumbing -----------------------------------------------------------------------

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # An unknown method (BREW /) is the client's mistake: 405, not the stdlib's 501.
        if code == HTTPStatus.NOT_IMPLEMENTED:
            code, message = HTTPStatus.METHOD_NOT_ALLOWED, "Method not allowed."
        super().send_error(code, message, explain)

    def setup(self) -> None:
        super().setup()
        # A silent client (e.g. a body shorter than its Content-Length) no longer pins a
        # thread forever: reads and writes give up after request_timeout seconds.
        self.connection.settimeout(self.server.app.request_timeout)
        # An answer is written as headers, then body: without TCP_NODELAY the body waits
        # for the client's delayed ACK of the headers (40 ms on Linux) on every request
        # of a kept-alive connection after the first.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def parse_request(self) -> bool:
        # Every request, whatever its method or path, names one of our hosts or is refused
        # before anything else is read (DNS rebinding: see cmi_core.sandbox.hosts).
        return super().parse_request() and self._host_allowed()

    def handle_expect_100(self) -> bool:
        # "Expect: 100-continue" is answered inside parse_request: refuse before inviting
        # the body of a request that will not be served.
        return self._host_allowed() and super().handle_expect_100()

    def _host_allowed(self) -> bool:
        hosts = self.headers.get_all("Host") or []
        refusal = self.server.app.host_policy.check(hosts, self.request_version, self.path)
        if refusal is None:
            return True
        self.server.app._report_refused_host(hosts, refusal.message)
        self.close_connection = True  # its body, if any, is left unread
        self._quietly(
            lambda: self._send(
                refusal.status,
                refusal.message + "\n",
                "text/plain; charset=utf-8",
                headers=[("Connection", "close")],
            )
        )
        return False

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)

    def _send(
        self,
        status: int,
        body: str | bytes,
        content_type: str = "text/html; charset=utf-8",
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection and all(n.lower() != "connection" for n, _ in headers):
            # Say so: a client that is not told reuses the socket the server is closing,
            # and its next request fails with "Remote end closed connection".
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        self._send(status, simple_page(status, message), headers=headers)

    def _json(self, status: int, data: object) -> None:
        self._send(status, json.dumps(data, indent=2), "application/json")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            self.close_connection = True
            raise BadRequest(411, "Send a Content-Length (chunked bodies are not accepted).")
        length_text = self.headers.get("Content-Length", "0").strip() or "0"
        if not ascii_digits(length_text):
            self.close_connection = True
            raise BadRequest(400, "Invalid Content-Length.")
        length = int(length_text)
        if length > MAX_BODY:
            self.close_connection = True
            raise BadRequest(413, f"The body is larger than {MAX_BODY} bytes.")
        return self.rfile.read(length) if length else b""

    def _form(self) -> list[tuple[str, str]]:
        return parse_form(self._body())

    def _dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path
        try:
            self.server.app.route(self, method, path)
        except BadRequest as exc:
            self._error(exc.status, exc.message)
        except (BrokenPipeError, ConnectionResetError) as exc:
            # The client went away: nobody to answer, nothing wrong with the sandbox.
            self.close_connection = True
            log.debug("client left during %s %s: %r", method, path, exc)
        except TimeoutError:
            self.close_connection = True
            log.debug("client too slow on %s %s", method, path)
            self._quietly(lambda: self._error(408, "The request body did not arrive in time."))
        except Exception:
            log.exception("sandbox handler failed on %s %s", method, path)
            self.close_connection = True
            self._quietly(
                lambda: self._error(500, "The sandbox failed on this request; see its log.")
            )

    def _quietly(self, answer: Callable[[], None]) -> None:
        """Send a last answer; the connection may already be gone or stuck."""
        try:
            answer()
        except OSError as exc:  # BrokenPipeError, ConnectionResetError, TimeoutError...
            log.debug("could not answer %s: %r", self.client_address[0], exc)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _not_allowed(self) -> None:
        self.close_connection = True
        self._error(405, "Method not allowed.", headers=[("Allow", "GET, POST")])

    def do_PUT(self) -> None:
        self._not_allowed()

    def do_DELETE(self) -> None:
        self._not_allowed()

    def do_PATCH(self) -> None:
        self._not_allowed()

    def do_OPTIONS(self) -> None:
        self._not_allowed()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    app: Sandbox

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up or stalling (e.g. while the last bytes are flushed) is not
        # the sandbox's failure: no traceback on stderr for it.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            log.debug("connection from %s ended early", client_address)
            return
        super().handle_error(request, client_address)


class Sandbox:
    """A local CMI: start it, point a :class:`~cmi_core.config.CMIConfig` at ``base_url``.

    ``Sandbox(port=0)`` picks a free port; ``data_dir=None`` keeps the SQLite file in a
    temporary directory removed by :meth:`stop`. ``clock`` (default the system clock) is
    what sessions, dates and the same-day rule read; tests pass a
    :class:`~cmi_core.sandbox.clock.ManualClock`. ``request_timeout`` is how long a
    connection may stay silent before it is dropped. ``allowed_hosts`` are more names
    the sandbox is reached under (``"sandbox.test"``, ``".docker.internal"``, ``"*"``):
    requests whose ``Host`` is none of them, ``localhost``, an IP address or ``host`` are
    refused (421), see :mod:`cmi_core.sandbox.hosts`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: Path | str | None = None,
        merchants: Sequence[Merchant] | None = None,
        callback_timeout: float = 10.0,
        *,
        clock: Clock | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        allowed_hosts: Iterable[str] = (),
    ) -> None:
        self.host = host
        #: The Host names served (localhost, IP addresses, ``host``, ``allowed_hosts``).
        self.host_policy = HostPolicy(host, allowed_hosts)
        self._reported_hosts: set[str] = set()
        self._reported_lock = threading.Lock()
        self.port = port
        self.request_timeout = request_timeout
        self.clock: Clock = clock or SystemClock()
        self._merchants = index_merchants(merchants or [DEFAULT_MERCHANT])
        self._temp_dir: str | None = None
        if data_dir is None:
            self._temp_dir = tempfile.mkdtemp(prefix="cmi-sandbox-")
            directory = Path(self._temp_dir)
        else:
            directory = Path(data_dir)
            directory.mkdir(parents=True, exist_ok=True)
        self.data_dir = directory
        self.store = Store(directory / DB_NAME)
        self.faults = FaultRegistry()
        self.ledger = Ledger(self.store, self._clock_proxy)
        self.dispatcher = CallbackDispatcher(
            self.store,
            ledger=self.ledger,
            clock=self._clock_proxy,
            merchants=self.merchants,
            faults=self.faults,
            timeout=callback_timeout,
        )
        self.gateway = Gateway(self.store, self._clock_proxy, self.merchants, self.dispatcher)
        self.api = XmlApi(self.store, self.ledger, self._clock_proxy, self.merchants)
        self.demo = DemoShop(next(iter(self._merchants.values())))
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # The clock may be replaced after construction (sandbox.clock = ManualClock()).
    @property
    def _clock_proxy(self) -> Clock:
        return _ClockProxy(self)

    def merchants(self) -> dict[str, Merchant]:
        return dict(self._merchants)

    @property
    def default_merchant(self) -> Merchant:
        return next(iter(self._merchants.values()))

    def add_merchant(self, merchant: Merchant) -> None:
        self._merchants = index_merchants([*self._merchants.values(), merchant])

    # Life cycle ---------------------------------------------------------------------

    def _bind(self) -> _Server:
        if self._server is None:
            server = _Server((self.host, self.port), _Handler)
            server.app = self
            self._server = server
            self.port = server.server_address[1]
        return self._server

    def start(self) -> Sandbox:
        """Serve in a background thread; returns self once the port is bound."""
        server = self._bind()
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="cmi-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` (or Ctrl-C in the caller)."""
        self._bind().serve_forever()

    def stop(self) -> None:
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
                self._thread.join(5)
            self._server.server_close()
            self._server = None
        self.dispatcher.stop()
        self.store.close()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:54321``: what ``CMIConfig(base_url=...)`` takes."""
        host = self.host
        if host in ("", "0.0.0.0"):  # noqa: S104 - reported, not bound
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def gateway_url(self) -> str:
        return self.base_url + "/fim/est3dgate"

    @property
    def api_url(self) -> str:
        return self.base_url + "/fim/api"

    # Test helpers -------------------------------------------------------------------

    def set_fault(
        self,
        fault: Fault | str = "none",
        *,
        oid: str | None = None,
        client_id: str | None = None,
        seconds: float = 0.0,
    ) -> None:
        """Bend the callbacks of one order (``oid``) or one merchant (``client_id``).

        ``fault`` is a :class:`Fault` or a name: ``delay`` (with ``seconds``), ``drop``,
        ``twice``, ``concurrent``, ``stale``, ``corrupt_hash``; ``none`` clears.
        """
        value = fault if isinstance(fault, Fault) else Fault.named(fault, seconds)
        self.faults.set(value, client_id=client_id, oid=oid)

    def clear_faults(self) -> None:
        self.faults.clear()

    def order(self, oid: str, client_id: str | None = None) -> OrderRow | None:
        return self.store.get_order(client_id or self.default_merchant.client_id, oid)

    def wait_for_callbacks(self, timeout: float = 10.0) -> None:
        """Wait for delayed or concurrent callbacks still running."""
        self.dispatcher.wait_idle(timeout)

    def _report_refused_host(self, hosts: Sequence[str], message: str) -> None:
        """A warning the first time a Host is refused (the operator may need to allow it)."""
        key = hosts[0] if hosts else ""
        with self._reported_lock:
            first = key not in self._reported_hosts
            first = first and len(self._reported_hosts) < MAX_REPORTED_HOSTS
            if first:
                self._reported_hosts.add(key)
        log.log(logging.WARNING if first else logging.DEBUG, "refused request: %s", message)

    # Routing --------------------------------------------------------------------------

    def route(self, handler: _Handler, method: str, path: str) -> None:
        client_ip = handler.client_address[0]
        posts = {
            "/fim/est3dgate": lambda: self._page(
                handler, self.gateway.request(handler._form(), client_ip)
            ),
            "/fim/est3dgate/pay": lambda: self._page(
                handler, self.gateway.pay(self._single(handler._form()), client_ip)
            ),
            "/fim/est3dgate/3ds": lambda: self._page(
                handler, self.gateway.challenge(self._single(handler._form()), client_ip)
            ),
            "/fim/api": lambda: handler._send(
                200,
                self.api.handle(handler._body(), handler.headers.get("Content-Type", "")),
                "text/xml; charset=utf-8",
            ),
            "/demo/callback": lambda: handler._send(
                200, self.demo.callback(handler._form()), "text/plain; charset=utf-8"
            ),
            "/demo/ok": lambda: handler._send(200, self.demo.result(handler._form())),
            "/demo/fail": lambda: handler._send(200, self.demo.result(handler._form())),
            "/sandbox/faults": lambda: self._set_faults(handler),
        }
        gets = {
            "/": lambda: handler._send(200, self._index()),
            "/merchant": lambda: self._redirect(handler, "/merchant/"),
            "/merchant/": lambda: handler._send(200, orders_page(self.store)),
            "/demo": lambda: self._redirect(handler, "/demo/"),
            "/demo/": lambda: handler._send(200, self._demo_page(handler)),
            "/sandbox/faults": lambda: handler._json(200, self.faults.describe()),
            "/sandbox/health": lambda: handler._json(200, {"status": "ok"}),
        }
        if method == "POST" and path in posts:
            posts[path]()
            return
        if method == "GET" and path in gets:
            gets[path]()
            return
        if path in posts or path in gets:
            handler._not_allowed()
            return
        if path.startswith("/merchant/order/"):
            if method != "GET":
                handler._not_allowed()
                return
            oid = unquote(path[len("/merchant/order/") :])
            html = order_page(self.store, oid)
            if html is None:
                handler._error(404, f"No order {oid}.")
            else:
                handler._send(200, html)
            return
        match = re.fullmatch(r"/merchant/callback/([0-9]{1,12})/retry", path)
        if match:
            if method != "POST":
                handler._not_allowed()
                return
            if same_origin(handler.headers) is False:
                handler.close_connection = True  # its body, if any, is left unread
                handler._error(403, "Cross-site request refused.")
                return
            callback = self.store.get_callback(int(match.group(1)))
            if callback is None:
                handler._error(404, "No such callback.")
                return
            self.dispatcher.retry(callback.id)
            order = self.store.get_order_by_id(callback.order_id)
            target = f"/merchant/order/{order.oid}" if order else "/merchant/"
            self._redirect(handler, target)
            return
        handler._error(404, f"Nothing at {path}.")

    @staticmethod
    def _single(fields: list[tuple[str, str]]) -> dict[str, str]:
        return dict(fields)

    @staticmethod
    def _page(handler: _Handler, page: Page) -> None:
        handler._send(page.status, page.html)

    @staticmethod
    def _redirect(handler: _Handler, location: str) -> None:
        handler._send(303, simple_page(303, location), headers=[("Location", location)])

    def _public_base(self, handler: _Handler) -> str:
        host = handler.headers.get("Host", "")
        return f"http://{host}" if _HOST_HEADER.match(host) else self.base_url

    def _demo_page(self, handler: _Handler) -> str:
        query = parse_qs(urlsplit(handler.path).query)
        lang = (query.get("lang") or ["fr"])[0]
        return self.demo.page(self._public_base(handler), self.base_url, lang)

    def _set_faults(self, handler: _Handler) -> None:
        body = handler._body()
        origin = same_origin(handler.headers)
        is_json = _is_json(handler.headers.get("Content-Type", ""))
        if origin is False or (not is_json and origin is not True):
            handler._json(
                403,
                {
                    "error": "cross-site request refused: send JSON "
                    "(Content-Type: application/json), or a form from this host"
                },
            )
            return
        try:
            if is_json:
                data = json.loads(body.decode("utf-8") or "{}")
                if not isinstance(data, dict):
                    raise ValueError("a JSON object is expected")
            else:
                data = dict(parse_form(body))
            if str(data.get("fault", "")).lower() == "clear_all":
                self.clear_faults()
            else:
                self.set_fault(
                    str(data.get("fault", "none")),
                    oid=str(data["oid"]) if data.get("oid") else None,
                    client_id=str(data["client_id"]) if data.get("client_id") else None,
                    seconds=float(data.get("seconds") or 0),
                )
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            handler._json(400, {"error": str(exc)})
            return
        except RecursionError:  # "[[[[..." nested past the interpreter's limit
            handler._json(400, {"error": "the JSON document is nested too deeply"})
            return
        handler._json(200, self.faults.describe())

    def _index(self) -> str:
        merchants = "".join(
            f"<li><code>{e(m.client_id)}</code> — {e(m.name)}"
            f"{' (API user ' + e(m.api_username) + ')' if m.api_username else ''}</li>"
            for m in self._merchants.values()
        )
        body = (
            "<h1>cmi sandbox</h1><p>A local emulator of CMI's hosted payment page and API.</p>"
            f"<ul>{merchants}</ul>"
            '<p><a href="/demo/">Demo shop</a> · <a href="/merchant/">Merchant Center</a></p>'
            "<p>Gateway: <code>POST /fim/est3dgate</code> · API: <code>POST /fim/api</code></p>"
        )
        return plain_page("cmi sandbox", body, "en")


class _ClockProxy:
    """Reads ``sandbox.clock`` at each call, so a test may swap the clock at any time."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def now(self) -> datetime:
        return self._sandbox.clock.now()
