"""Reports to Saleor reuse this thread's connection instead of a new TCP/TLS handshake each."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cmi_django.operations import budget
from cmi_saleor import graphql
from cmi_saleor.graphql import SaleorAPIError, execute


class _Saleor(ThreadingHTTPServer):
    """A keep-alive HTTP/1.1 GraphQL endpoint that counts the connections it accepts."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.connections = 0
        self.authorizations: list[str] = []
        self.hang_up = False  # close each connection after answering, without saying so
        self.delay = 0.0  # seconds before answering
        self.drip = 0.0  # seconds between the answer's bytes (headers sent at once)

    def get_request(self) -> Any:
        self.connections += 1
        return super().get_request()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Saleor

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.authorizations.append(self.headers["Authorization"])
        time.sleep(self.server.delay)
        body = json.dumps({"data": {"app": {"id": "QXBwOjE="}}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.drip:
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(self.server.drip)
        else:
            self.wfile.write(body)
        self.close_connection = self.server.hang_up


@pytest.fixture
def saleor() -> Iterator[_Saleor]:
    server = _Saleor()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_one_thread_reuses_its_connection(saleor: _Saleor) -> None:
    url = f"http://127.0.0.1:{saleor.server_address[1]}/graphql/"
    for token in ("token-1", "token-2", "token-3"):
        assert execute(url, token, "{ app { id } }") == {"app": {"id": "QXBwOjE="}}
    assert saleor.connections == 1
    # Each request carries its own token: nothing of one call leaks into the next.
    assert saleor.authorizations == ["Bearer token-1", "Bearer token-2", "Bearer token-3"]


def test_each_thread_has_its_own_connection(saleor: _Saleor) -> None:
    url = f"http://127.0.0.1:{saleor.server_address[1]}/graphql/"
    execute(url, "token", "{ app { id } }")
    failures: list[BaseException] = []

    def other() -> None:
        try:
            execute(url, "token", "{ app { id } }")
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            failures.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert not failures
    assert saleor.connections == 2


def test_a_connection_saleor_closed_is_replaced(saleor: _Saleor) -> None:
    # Servers drop idle keep-alive connections: the next report opens a new one.
    saleor.hang_up = True
    url = f"http://127.0.0.1:{saleor.server_address[1]}/graphql/"
    for _ in range(3):
        assert execute(url, "token", "{ app { id } }") == {"app": {"id": "QXBwOjE="}}
    assert saleor.connections == 3


def test_saleor_gone_is_an_api_error(saleor: _Saleor) -> None:
    url = f"http://127.0.0.1:{saleor.server_address[1]}/graphql/"
    saleor.shutdown()
    saleor.server_close()
    with pytest.raises(SaleorAPIError, match="unreachable"):
        execute(url, "token", "{ app { id } }")


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[pytest.MonkeyPatch]:
    """A clean proxy environment, an empty home, and the app's reading of it forgotten."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    graphql._environment.cache_clear()
    yield monkeypatch
    graphql._environment.cache_clear()


def test_the_environments_proxy_is_used_unless_no_proxy_names_saleor(
    saleor: _Saleor, environment: pytest.MonkeyPatch
) -> None:
    """A shop whose servers reach out through a proxy keeps reaching Saleor through it
    (the proxy here: a server of the same kind, which answers the forwarded POST)."""
    proxy = _Saleor()
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{saleor.server_address[1]}/graphql/"
        environment.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        assert execute(url, "token", "{ app { id } }") == {"app": {"id": "QXBwOjE="}}
        assert (proxy.connections, saleor.connections) == (1, 0)
        graphql._environment.cache_clear()
        environment.setenv("NO_PROXY", "127.0.0.1")
        execute(url, "token", "{ app { id } }")
        assert (proxy.connections, saleor.connections) == (1, 1)
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_the_environment_is_read_once_per_saleor(
    saleor: _Saleor, environment: pytest.MonkeyPatch
) -> None:
    """``requests`` scanned the whole environment twice on every POST."""
    import urllib.request

    scans: list[int] = []
    scan = urllib.request.getproxies_environment

    def counted() -> dict[str, str]:
        scans.append(1)
        return scan()

    environment.setattr(urllib.request, "getproxies_environment", counted)
    environment.setattr(urllib.request, "getproxies", counted)
    url = f"http://127.0.0.1:{saleor.server_address[1]}/graphql/"
    for _ in range(3):
        execute(url, "token", "{ app { id } }")
    assert 1 <= len(scans) <= 2, scans  # the first POST's reading only


def test_a_netrc_login_never_replaces_the_apps_token(
    saleor: _Saleor, environment: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """With the environment trusted, ``requests`` put a ``~/.netrc`` login for Saleor's
    host in place of the app's bearer token."""
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password secret\n")
    netrc.chmod(0o600)
    url = f"http://127.0.0.1:{saleor.server_address[1]}/graphql/"
    execute(url, "app-token", "{ app { id } }")
    assert saleor.authorizations == ["Bearer app-token"]


def test_inside_a_budget_saleor_is_waited_for_no_longer_than_it_leaves(
    saleor: _Saleor, settings: Any
) -> None:
    """A report sent while Saleor waits for the app's answer (transactionProcess) waits
    for Saleor's API at most what the budget leaves, not ``CMI_SALEOR_HTTP_TIMEOUT``; with
    nothing left, nothing is sent."""
    url = f"http://127.0.0.1:{saleor.server_address[1]}/graphql/"
    settings.CMI_SALEOR_HTTP_TIMEOUT = 5
    saleor.delay = 2.0
    started = time.monotonic()
    with budget(0.5), pytest.raises(SaleorAPIError, match="Timeout"):
        execute(url, "token", "{ app { id } }")
    assert time.monotonic() - started < 1.2
    asked = len(saleor.authorizations)
    with budget(0), pytest.raises(SaleorAPIError, match="no time left"):
        execute(url, "token", "{ app { id } }")
    assert len(saleor.authorizations) == asked  # nothing sent


def test_inside_a_budget_a_dripping_answer_is_given_up_by_then(
    saleor: _Saleor, settings: Any
) -> None:
    """requests' timeouts bound each wait for the network, not their sum: a Saleor that
    sends its answer's headers at once, then a byte at a time (a busy proxy, a broken
    network), kept a transactionProcess waiting well past its budget (30 bytes, 0.1 s
    apart: 3 s for a 1 s budget). Inside a budget the POST now ends by then."""
    url = f"http://127.0.0.1:{saleor.server_address[1]}/graphql/"
    settings.CMI_SALEOR_HTTP_TIMEOUT = 5
    saleor.drip = 0.1
    started = time.monotonic()
    with budget(1.0), pytest.raises(SaleorAPIError, match="Timeout"):
        execute(url, "token", "{ app { id } }")
    assert time.monotonic() - started < 1.5
