"""Helpers for the emulator's tests: a merchant server, signed requests, a "browser".

Everything goes over real HTTP on loopback: the sandbox on a free port, and a tiny
merchant server (callback receiver, okUrl, failUrl) that records what it receives and
answers what the test tells it to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl

import requests

from cmi_core.config import CMIConfig
from cmi_core.hashing import compute_hash
from cmi_core.request import PaymentOrder, build_payment_request
from cmi_core.sandbox import DEFAULT_MERCHANT, Sandbox

Fields = list[tuple[str, str]]
APPROVED_CARD = "4111111111111111"
START = datetime(2025, 6, 10, 9, 0, tzinfo=UTC)  # 10:00 in Casablanca (UTC+1)


# The merchant's server ------------------------------------------------------------------


@dataclass
class Received:
    path: str
    fields: Fields
    at: float

    @property
    def values(self) -> dict[str, str]:
        return dict(self.fields)


@dataclass
class Merchant:
    """A merchant site on loopback: records every POST; ``reply`` decides the answer."""

    base_url: str = ""
    received: list[Received] = field(default_factory=list)
    reply: str | Callable[[Received], tuple[int, str]] = "ACTION=POSTAUTH"
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def posts(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    @property
    def callbacks(self) -> list[Received]:
        return self.posts("/callback")

    def wait_for(self, path: str, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.posts(path)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        return self.posts(path)


def merchant_handler(merchant: Merchant) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode("utf-8")
            record = Received(self.path, parse_qsl(body, keep_blank_values=True), time.monotonic())
            with merchant.lock:
                merchant.received.append(record)
            if self.path == "/callback" and merchant.delay:
                time.sleep(merchant.delay)
            if self.path == "/callback":
                reply = merchant.reply
                status, text = reply(record) if callable(reply) else (200, reply)
            else:
                status, text = 200, "<html><body>merchant page</body></html>"
            data = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def config_for(sandbox: Sandbox, **overrides: Any) -> CMIConfig:
    values: dict[str, Any] = {
        "client_id": DEFAULT_MERCHANT.client_id,
        "store_key": DEFAULT_MERCHANT.store_key,
        "api_username": DEFAULT_MERCHANT.api_username,
        "api_password": DEFAULT_MERCHANT.api_password,
        "base_url": sandbox.base_url,
    }
    values.update(overrides)
    return CMIConfig(**values)


_counter = iter(range(1, 1_000_000))


def payment_fields(
    sandbox: Sandbox, merchant: Merchant, oid: str | None = None, **order: Any
) -> Fields:
    """A complete signed request built by the core, pointing at ``merchant``."""
    values: dict[str, Any] = {
        "oid": oid or f"ORDER-{next(_counter)}",
        "amount": Decimal("120.50"),
        "email": "client@example.ma",
        "billing_name": "Amina Test",
        "ok_url": f"{merchant.base_url}/ok",
        "fail_url": f"{merchant.base_url}/fail",
        "callback_url": f"{merchant.base_url}/callback",
        "shop_url": f"{merchant.base_url}/shop",
    }
    values.update(order)
    return list(build_payment_request(config_for(sandbox), PaymentOrder(**values)).fields)


def resign(fields: Sequence[tuple[str, str]], store_key: str | None = None) -> Fields:
    """The fields with a fresh ``hash`` (after a test changed some of them)."""
    kept = [(k, v) for k, v in fields if k != "hash"]
    return [*kept, ("hash", compute_hash(dict(kept), store_key or DEFAULT_MERCHANT.store_key))]


# The shopper's browser ----------------------------------------------------------------------


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, tuple[str, Fields, list[dict[str, str | None]]]] = {}
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self._current = values.get("id") or f"form{len(self.forms)}"
            self.forms[self._current] = (values.get("action") or "", [], [])
        elif self._current is not None and tag == "input" and values.get("type") == "hidden":
            self.forms[self._current][1].append((values["name"] or "", values.get("value") or ""))
        elif self._current is not None and tag == "button":
            self.forms[self._current][2].append(values)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def forms(html: str) -> dict[str, tuple[str, Fields, list[dict[str, str | None]]]]:
    """Every form of a page: id -> (action, hidden fields, buttons' attributes)."""
    parser = _Forms()
    parser.feed(html)
    return parser.forms


class Browser:
    """The shopper: posts the merchant's form, fills the card form, follows the result."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.http = requests.Session()
        self.page: requests.Response | None = None

    def open(self, fields: Sequence[tuple[str, str]]) -> requests.Response:
        self.page = self.http.post(self.sandbox.gateway_url, data=list(fields), timeout=10)
        return self.page

    @property
    def token(self) -> str:
        assert self.page is not None
        return dict(forms(self.page.text)["card"][1])["session"]

    def pay(
        self,
        pan: str = APPROVED_CARD,
        month: str = "12",
        year: str = "30",
        cvv: str = "123",
        **extra: str,
    ) -> requests.Response:
        data = {
            "session": self.token,
            "pan": pan,
            "Ecom_Payment_Card_ExpDate_Month": month,
            "Ecom_Payment_Card_ExpDate_Year": year,
            "cv2": cvv,
            **extra,
        }
        self.page = self.http.post(self.sandbox.gateway_url + "/pay", data=data, timeout=10)
        return self.page

    def answer_challenge(self, code: str) -> requests.Response:
        assert self.page is not None
        token = dict(forms(self.page.text)["challenge"][1])["session"]
        self.page = self.http.post(
            self.sandbox.gateway_url + "/3ds", data={"session": token, "otp": code}, timeout=10
        )
        return self.page

    def return_form(self) -> tuple[str, Fields]:
        """The form back to the merchant (okUrl / failUrl) on the current page."""
        assert self.page is not None
        action, fields, _ = forms(self.page.text)["return"]
        return action, fields

    def follow_return(self) -> requests.Response:
        action, fields = self.return_form()
        return self.http.post(action, data=fields, timeout=10)
