"""Fixtures for the emulator's tests: a running Sandbox, a merchant server, a browser."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from cmi_core.sandbox import ManualClock, Sandbox

from .support import START, Browser, Merchant, merchant_handler


@pytest.fixture
def merchant() -> Iterator[Merchant]:
    shop = Merchant()
    server = ThreadingHTTPServer(("127.0.0.1", 0), merchant_handler(shop))
    server.daemon_threads = True
    shop.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield shop
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def sandbox(clock: ManualClock) -> Iterator[Sandbox]:
    with Sandbox(port=0, clock=clock, callback_timeout=1.0) as running:
        yield running


@pytest.fixture
def browser(sandbox: Sandbox) -> Browser:
    return Browser(sandbox)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "sandbox-data"
