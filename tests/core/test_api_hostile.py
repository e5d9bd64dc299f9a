"""The API client against a hostile or broken CMI: real HTTP servers on 127.0.0.1.

Each server is started by the test and misbehaves in one way the issue saw: it drips its
answer (headers or body) one byte at a time, redirects, answers 60 MB, or sends a
100,000-character TransId. The client must give up within its overall deadline (plus a
small margin), follow no redirect, read no more than its cap, and store no over-long
identifier. ``responses`` covers the finer parser rules below.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import responses

from cmi_core.api import MAX_RESPONSE_BYTES, CMIClient
from cmi_core.config import CMIConfig
from cmi_core.errors import APIError, APITransportError, ConfigurationError

PASSWORD = "S3cr3t-P@ss"
DEADLINE = 1.0
READ_TIMEOUT = 0.5
DRIP = 0.2  # seconds between two bytes: always inside the read timeout
MARGIN = 0.75  # seconds allowed past the deadline (thread start, socket shutdown, CI noise)


def cc5(**fields: str) -> bytes:
    values = {
        "OrderId": "ORDER-1",
        "GroupId": "ORDER-1",
        "Response": "Approved",
        "AuthCode": "P12345",
        "HostRefNum": "325322002345",
        "ProcReturnCode": "00",
        "TransId": "23253WmXE12345",
        "ErrMsg": "",
        **fields,
    }
    body = "".join(f"<{k}>{v}</{k}>" for k, v in values.items())
    return f'<?xml version="1.0" encoding="UTF-8"?><CC5Response>{body}</CC5Response>'.encode()


@functools.cache
def gzip_bomb() -> bytes:
    """About 100 KB that inflate to 100 MiB."""
    return gzip.compress(b"<CC5Response>" + b" " * (100 * 1024 * 1024), 6)


@dataclass
class Hostile:
    """What the server was asked, and what it managed to send."""

    base_url: str = ""
    paths: list[str] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)


def _handler(state: Hostile) -> type[BaseHTTPRequestHandler]:
    big = 60 * 1024 * 1024
    block = b"<x>" + b"A" * (64 * 1024 - 7) + b"</x>"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _drip(self, data: bytes) -> None:
            for byte in data:
                if state.stop.is_set():
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                state.sent[self.path] = state.sent.get(self.path, 0) + 1
                time.sleep(DRIP)

        def _send(self, status: int, body: bytes, **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/xml")
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            if "Content_Length" not in headers and "Transfer_Encoding" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _do(self) -> None:
            state.paths.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._answer()

        do_POST = _do  # noqa: N815 - http.server's naming
        do_GET = _do  # noqa: N815

        def _answer(self) -> None:
            if self.path == "/drip-body/fim/api":
                body = cc5() * 200
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.flush()
                self._drip(body)
            elif self.path == "/drip-headers/fim/api":
                self._drip(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 10_000 + b"\r\n\r\n")
            elif self.path == "/redirect/fim/api":
                self._send(302, b"", Location="/elsewhere/fim/api")
            elif self.path == "/elsewhere/fim/api":
                self._send(405, b"Method Not Allowed")
            elif self.path == "/big/fim/api":
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(big))
                self.end_headers()
                self._stream(block, big)
            elif self.path == "/big-chunked/fim/api":
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self._stream(block, big, chunked=True)
            elif self.path == "/gzip-bomb/fim/api":
                self._send(200, gzip_bomb(), Content_Encoding="gzip")
            elif self.path == "/long-transid/fim/api":
                self._send(200, cc5(TransId="7" * 100_000))
            elif self.path == "/long-errmsg/fim/api":
                self._send(200, cc5(Response="Declined", ProcReturnCode="05", ErrMsg="E" * 100_000))

        def _stream(self, block: bytes, total: int, *, chunked: bool = False) -> None:
            written = 0
            while written < total and not state.stop.is_set():
                if chunked:
                    self.wfile.write(f"{len(block):x}\r\n".encode() + block + b"\r\n")
                else:
                    self.wfile.write(block)
                written += len(block)
                state.sent[self.path] = written
            if chunked:
                self.wfile.write(b"0\r\n\r\n")

    return Handler


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    state = Hostile()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()


def client_for(state: Hostile, path: str, **kw: float) -> CMIClient:
    config = CMIConfig(
        client_id="600000001",
        store_key="TEST-STORE-KEY",
        base_url=state.base_url + path,
        api_username="apiuser",
        api_password=PASSWORD,
        http_timeout=kw.pop("http_timeout", READ_TIMEOUT),
        api_deadline=kw.pop("api_deadline", DEADLINE),
    )
    return CMIClient(config, backoff=0.05, **kw)  # type: ignore[arg-type]


def timed(call: Callable[[], object]) -> tuple[APITransportError, float]:
    started = time.monotonic()
    with pytest.raises(APITransportError) as caught:
        call()
    return caught.value, time.monotonic() - started


# -- one overall deadline ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/drip-body", "/drip-headers"])
def test_a_dripping_server_cannot_hold_a_refund_past_the_deadline(
    hostile: Hostile, path: str
) -> None:
    with client_for(hostile, path) as api:
        error, elapsed = timed(lambda: api.refund("ORDER-1", Decimal("10")))
    assert elapsed < DEADLINE + MARGIN, f"the refund ran {elapsed:.2f}s"
    assert elapsed >= DEADLINE - 0.1  # it did wait for the answer, up to the deadline
    assert f"deadline of {DEADLINE:g}s" in str(error)
    # A refund that may have reached CMI must not be sent again blindly.
    assert error.retryable is False
    assert "outcome is unknown" in str(error)
    assert PASSWORD not in str(error)
    assert hostile.sent.get(path + "/fim/api", 0) >= 5  # bytes came, each inside the timeout


def test_a_status_query_retries_inside_the_same_deadline(hostile: Hostile) -> None:
    with client_for(hostile, "/drip-body") as api:
        error, elapsed = timed(lambda: api.status("ORDER-1"))
    assert elapsed < DEADLINE + MARGIN, f"the status query ran {elapsed:.2f}s"
    assert hostile.paths.count("/drip-body/fim/api") == 1  # no time was left for a retry
    assert error.retryable is True  # a query is safe to repeat later


def test_the_longest_call_under_dripping_servers(
    hostile: Hostile, record_property: Callable[[str, object], None]
) -> None:
    """The figure: the longest of several calls against the dripping servers."""
    longest = 0.0
    with client_for(hostile, "/drip-body") as body, client_for(hostile, "/drip-headers") as head:
        for call in (
            lambda: body.capture("ORDER-1"),
            lambda: body.void("ORDER-1"),
            lambda: body.history("ORDER-1"),
            lambda: head.capture("ORDER-1"),
            lambda: head.status("ORDER-1"),
        ):
            _, elapsed = timed(call)
            longest = max(longest, elapsed)
    record_property("longest_call_seconds", round(longest, 3))
    assert longest < DEADLINE + MARGIN, f"longest call {longest:.3f}s"


def test_the_deadline_is_a_validated_setting() -> None:
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ConfigurationError) as caught:
            CMIConfig(client_id="600000001", store_key="K", api_deadline=bad)
        assert caught.value.setting == "api_deadline"
    assert CMIConfig(client_id="600000001", store_key="K").api_deadline == 30.0


# -- no redirects ------------------------------------------------------------------------


def test_a_redirect_is_an_error_and_is_not_followed(hostile: Hostile) -> None:
    with client_for(hostile, "/redirect") as api:
        error, _ = timed(lambda: api.capture("ORDER-1"))
    assert hostile.paths == ["/redirect/fim/api"]  # nothing was sent to the other URL
    assert error.http_status == 302
    assert "HTTP 302, a redirect (not followed)" in str(error)
    assert "/elsewhere" not in str(error)
    assert PASSWORD not in str(error)
    assert error.retryable is False


def test_a_redirected_query_is_not_retried(hostile: Hostile) -> None:
    with client_for(hostile, "/redirect") as api:
        error, _ = timed(lambda: api.status("ORDER-1"))
    assert hostile.paths == ["/redirect/fim/api"]
    assert error.retryable is False


# -- capped answers ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
def test_a_60_mb_answer_is_refused_past_the_cap(hostile: Hostile, path: str) -> None:
    with client_for(hostile, path, api_deadline=10.0) as api:
        error, elapsed = timed(lambda: api.capture("ORDER-1"))
    assert f"an answer over {MAX_RESPONSE_BYTES} bytes, refused" in str(error)
    assert error.retryable is False
    assert elapsed < 5.0
    # The server could not push its 60 MB: the client stopped reading at the cap
    # (what the sockets' buffers hold comes on top).
    time.sleep(0.2)
    assert hostile.sent.get(path + "/fim/api", 0) < 30 * 1024 * 1024


def test_a_declared_60_mb_answer_is_refused_unread(hostile: Hostile) -> None:
    with client_for(hostile, "/big") as api:
        error, _ = timed(lambda: api.status("ORDER-1"))
    assert "refused unread" in str(error)
    assert hostile.paths == ["/big/fim/api"]  # too large is not retried


def test_a_gzip_bomb_is_not_expanded_past_the_cap(hostile: Hostile) -> None:
    gzip_bomb()  # made before the call, so that the server answers at once
    with client_for(hostile, "/gzip-bomb", api_deadline=10.0) as api:
        error, elapsed = timed(lambda: api.void("ORDER-1"))
    assert f"an answer over {MAX_RESPONSE_BYTES} bytes" in str(error)
    assert elapsed < 5.0


def test_a_gzipped_answer_is_read() -> None:
    config = CMIConfig(
        client_id="600000001", store_key="K", api_username="apiuser", api_password=PASSWORD
    )
    with responses.RequestsMock() as mocked, CMIClient(config) as api:
        mocked.add(
            responses.POST,
            config.api_url,
            body=gzip.compress(cc5()),
            headers={"Content-Encoding": "gzip"},
        )
        assert api.void("ORDER-1").trans_id == "23253WmXE12345"
        assert mocked.calls[0].request.headers["Accept-Encoding"] == "identity"


# -- values held to the guide's lengths --------------------------------------------------


def test_a_100000_character_trans_id_is_refused(hostile: Hostile) -> None:
    with client_for(hostile, "/long-transid") as api:
        error, _ = timed(lambda: api.capture("ORDER-1"))
    message = str(error)
    assert "TransId is longer than 64 characters" in message
    assert "7777777" not in message  # the value itself is never repeated
    assert "outcome is unknown" in message
    assert error.retryable is False


def test_a_100000_character_error_message_is_cut_to_255(hostile: Hostile) -> None:
    with client_for(hostile, "/long-errmsg") as api, pytest.raises(APIError) as caught:
        api.refund("ORDER-1", Decimal("1"))
    assert not isinstance(caught.value, APITransportError)  # CMI's refusal, readable
    assert caught.value.err_msg == "E" * 255
    assert len(str(caught.value)) < 400


def _config() -> CMIConfig:
    return CMIConfig(
        client_id="600000001", store_key="K", api_username="apiuser", api_password=PASSWORD
    )


@contextlib.contextmanager
def answering(body: bytes) -> Iterator[CMIClient]:
    """A client whose one call gets ``body`` from a mocked CMI."""
    config = _config()
    with responses.RequestsMock() as mocked, CMIClient(config, retries=0) as api:
        mocked.add(responses.POST, config.api_url, body=body)
        yield api


def _extra(**extra: str) -> bytes:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
    return cc5().replace(b"</CC5Response>", f"<Extra>{inner}</Extra></CC5Response>".encode())


@pytest.mark.parametrize(
    ("field", "value", "limit"),
    [
        ("OrderId", "O" * 65, 64),
        ("GroupId", "G" * 65, 64),
        ("AuthCode", "1234567", 6),
        ("HostRefNum", "1" * 13, 12),
        ("ProcReturnCode", "000", 2),
        ("Response", "Approved" * 3, 16),
        ("TransId", "T" * 65, 64),
    ],
)
def test_over_long_identifiers_refuse_the_answer(field: str, value: str, limit: int) -> None:
    with answering(cc5(**{field: value})) as api:
        with pytest.raises(APITransportError) as caught:
            api.void("ORDER-1")
        assert f"{field} is longer than {limit} characters" in str(caught.value)
        assert value not in str(caught.value)
        assert caught.value.retryable is False


def test_identifiers_at_their_limit_are_kept() -> None:
    with answering(cc5(TransId="T" * 64, HostRefNum="1" * 12, AuthCode="A" * 6)) as api:
        result = api.void("ORDER-1")
        assert (result.trans_id, result.host_ref_num, result.auth_code) == (
            "T" * 64,
            "1" * 12,
            "A" * 6,
        )


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"TRANS_ID": "T" * 65}, "Extra/TRANS_ID is longer than 64 characters"),
        ({"ORD_ID": "O" * 65}, "Extra/ORD_ID is longer than 64 characters"),
        ({"TRANS_STAT": "C" * 9}, "Extra/TRANS_STAT is longer than 8 characters"),
        ({"CAPTURE_AMT": "1" * 19}, "Extra/CAPTURE_AMT is longer than 18 characters"),
        ({"X" * 65: "1"}, "an <Extra> element name is longer than 64"),
    ],
)
def test_over_long_status_fields_refuse_the_answer(extra: dict[str, str], reason: str) -> None:
    with answering(_extra(**extra)) as api:
        with pytest.raises(APITransportError) as caught:
            api.status("ORDER-1")
        assert reason in str(caught.value)


def test_other_extra_text_is_cut_to_255() -> None:
    with answering(_extra(TRANS_STAT="C", HOSTMSG="H" * 100_000, PAN="4" * 300)) as api:
        status = api.status("ORDER-1")
        assert status.extra["HOSTMSG"] == "H" * 255
        assert status.masked_pan == "4" * 19  # MaskedPan's length, guide §4.2.3


def test_a_history_line_with_an_over_long_trans_id_is_refused() -> None:
    line = "\t".join(["S", "C", "100", "100", "", "", "", "1", "A", "00", "T" * 65])
    with answering(_extra(TRXCOUNT="1", TRX1=line)) as api:
        with pytest.raises(APITransportError) as caught:
            api.history("ORDER-1")
        assert "TRX1 trans id is longer than 64 characters" in str(caught.value)


def test_an_over_long_history_line_is_refused() -> None:
    with answering(_extra(TRXCOUNT="1", TRX1="S\t" + "x" * 600)) as api:
        with pytest.raises(APITransportError) as caught:
            api.history("ORDER-1")
        assert "Extra/TRX1 is longer than 512 characters" in str(caught.value)


# -- a shorter deadline for one query (``within``) ---------------------------------------


@pytest.mark.parametrize("query", ["status", "history"])
def test_a_query_asked_within_less_than_the_deadline_gives_up_by_then(
    hostile: Hostile, query: str
) -> None:
    """A caller sharing its own deadline between calls (Saleor's transactionProcess:
    status, then history) hands each what is left; the call ends by then, not by the
    config's ``api_deadline``."""
    with client_for(hostile, "/drip-body") as api:
        error, elapsed = timed(lambda: getattr(api, query)("ORDER-1", within=0.4))
    assert 0.3 < elapsed < 0.4 + MARGIN, f"the {query} query ran {elapsed:.2f}s"
    assert "deadline of 0.4s" in str(error)
    assert PASSWORD not in str(error)


def test_a_query_with_no_time_left_sends_nothing(hostile: Hostile) -> None:
    with client_for(hostile, "/drip-body") as api:
        error, elapsed = timed(lambda: api.history("ORDER-1", within=-0.2))
    assert elapsed < 0.1
    assert "deadline of 0s has passed" in str(error)
    assert hostile.paths == []  # nothing reached the server


def test_a_query_within_nan_seconds_sends_nothing(hostile: Hostile) -> None:
    """``within`` not a number (a caller's arithmetic gone wrong) is no time at all, never
    the config's whole deadline (``min(deadline, nan)`` is ``deadline``)."""
    with client_for(hostile, "/drip-body") as api:
        error, elapsed = timed(lambda: api.status("ORDER-1", within=float("nan")))
    assert elapsed < 0.1
    assert "deadline of 0s has passed" in str(error)
    assert hostile.paths == []
