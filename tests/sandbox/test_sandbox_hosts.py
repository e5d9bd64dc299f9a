"""DNS rebinding: only requests naming one of the emulator's own hosts are served."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from typing import Any

import pytest
import requests

from cmi_core.sandbox import DEFAULT_MERCHANT, Sandbox, build_cli_parser, main
from cmi_core.sandbox.cli import _sandbox_from_args, banner
from cmi_core.sandbox.hosts import HostPolicy, host_name, normalize_allowed_host
from tests.conftest import CHROMIUM, CHROMIUM_ARGS

from .support import Browser, Merchant, forms, payment_fields

EVIL = "attacker.example"
NO_FAULTS = {"merchants": {}, "orders": []}


def raw(sandbox: Sandbox, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send one request as typed (headers exactly as given); its status and whole answer."""
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as connection:
        connection.sendall(head.encode("latin-1") + body)
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := connection.recv(65536)):
            answer += chunk
        headers, _, content = answer.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in headers.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(content) < length and (chunk := connection.recv(65536)):
            content += chunk
    return int(answer.split()[1]), headers + b"\r\n\r\n" + content


def rows(sandbox: Sandbox, table: str) -> int:
    """How many rows a table of the sandbox's SQLite file holds."""
    [row] = sandbox.store._all(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
    return int(row[0])


# Refused ---------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", [None, f"http://{EVIL}", "SAME"])
def test_foreign_host_cannot_switch_faults(sandbox: Sandbox, origin: str | None) -> None:
    # "SAME": what a rebound page really sends, Origin = its own (rebound) origin.
    headers = {"Host": f"{EVIL}:{sandbox.port}", "Content-Type": "application/json"}
    if origin is not None:
        headers["Origin"] = f"http://{EVIL}:{sandbox.port}" if origin == "SAME" else origin
    answer = requests.post(
        f"{sandbox.base_url}/sandbox/faults",
        data=json.dumps({"client_id": DEFAULT_MERCHANT.client_id, "fault": "drop"}),
        headers=headers,
        timeout=5,
    )
    assert answer.status_code == 421
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert answer.headers["Connection"] == "close"
    assert EVIL in answer.text
    assert "--allowed-host" in answer.text
    assert sandbox.faults.describe() == NO_FAULTS
    # Nor read them, nor clear switches set by the developer.
    sandbox.set_fault("twice", oid="MINE")
    before = sandbox.faults.describe()
    for method, data in (("GET", None), ("POST", '{"fault": "clear_all"}')):
        other = requests.request(
            method, f"{sandbox.base_url}/sandbox/faults", data=data, headers=headers, timeout=5
        )
        assert other.status_code == 421
        assert "orders" not in other.text
    assert sandbox.faults.describe() == before


def test_foreign_host_cannot_open_the_payment_page(sandbox: Sandbox, merchant: Merchant) -> None:
    fields = payment_fields(sandbox, merchant, oid="REBOUND-1")
    answer = requests.post(sandbox.gateway_url, data=fields, headers={"Host": EVIL}, timeout=5)
    assert answer.status_code == 421
    assert 'id="card"' not in answer.text
    assert sandbox.order("REBOUND-1") is None
    assert rows(sandbox, "sessions") == 0
    # The card form and the challenge are refused as well, whatever the session.
    for path in ("/pay", "/3ds"):
        refused = requests.post(
            sandbox.gateway_url + path,
            data={"session": "x", "pan": "4111111111111111"},
            headers={"Host": EVIL},
            timeout=5,
        )
        assert refused.status_code == 421
    assert merchant.received == []
    assert (rows(sandbox, "attempts"), rows(sandbox, "transactions")) == (0, 0)
    # The same request under the emulator's own name is served.
    assert Browser(sandbox).open(fields).status_code == 200
    assert rows(sandbox, "sessions") == 1


def refused_callback(sandbox: Sandbox, merchant: Merchant, browser: Browser, oid: str) -> Any:
    """A paid order whose callback the shop answered FAILURE (so "Réessayer" applies)."""
    merchant.reply = "FAILURE"
    browser.open(payment_fields(sandbox, merchant, oid=oid))
    browser.pay()
    order = sandbox.order(oid)
    assert order is not None
    [callback] = sandbox.store.callbacks(order.id)
    merchant.reply = "ACTION=POSTAUTH"
    return callback


def retry_as(sandbox: Sandbox, callback: Any, host: str) -> requests.Response:
    """The Merchant Center's "Réessayer" as a page served under ``host`` posts it."""
    return requests.post(
        f"{sandbox.base_url}/merchant/callback/{callback.id}/retry",
        headers={"Host": host, "Origin": f"http://{host}"},
        allow_redirects=False,
        timeout=5,
    )


def test_foreign_host_cannot_read_or_drive_the_merchant_center(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    callback = refused_callback(sandbox, merchant, browser, "REBOUND-2")
    host = f"{EVIL}:{sandbox.port}"
    for path in ("/merchant/", "/merchant/order/REBOUND-2", "/", "/demo/", "/sandbox/health"):
        answer = requests.get(sandbox.base_url + path, headers={"Host": host}, timeout=5)
        assert answer.status_code == 421, path
        assert "REBOUND-2" not in answer.text
    retry = retry_as(sandbox, callback, host)
    assert retry.status_code == 421
    assert len(merchant.callbacks) == 1  # not sent again
    order = sandbox.order("REBOUND-2")
    assert order is not None
    assert (order.state, order.flagged) == ("PRE", True)
    api = requests.post(sandbox.api_url, data=b"<CC5Request/>", headers={"Host": host}, timeout=5)
    assert api.status_code == 421


@pytest.mark.parametrize(
    ("head", "status"),
    [
        ("GET /sandbox/health HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host
        ("GET /sandbox/health HTTP/1.1\r\nHost: \r\n\r\n", 400),
        ("GET /sandbox/health HTTP/1.1\r\nHost: localhost\r\nHost: evil\r\n\r\n", 400),
        ("GET /sandbox/health HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        ("GET /sandbox/health HTTP/1.1\r\nHost: localhost:80:80\r\n\r\n", 400),
        ("GET /sandbox/health HTTP/1.1\r\nHost: http://localhost/\r\n\r\n", 400),
        ("GET /sandbox/health HTTP/1.1\r\nHost: evil.localhost\r\n\r\n", 421),
        ("GET /sandbox/health HTTP/1.1\r\nHost: localhost.evil\r\n\r\n", 421),
        ("GET /sandbox/health HTTP/1.1\r\nHost: 127.0.0.1.nip.io\r\n\r\n", 421),
        # An absolute-form target names the host; Host is then ignored (RFC 9112 §3.2.2).
        ("GET http://attacker.example/sandbox/health HTTP/1.1\r\nHost: localhost\r\n\r\n", 421),
        ("HEAD / HTTP/1.1\r\nHost: attacker.example\r\n\r\n", 421),
        ("PUT / HTTP/1.1\r\nHost: attacker.example\r\n\r\n", 421),
        ("OPTIONS /sandbox/faults HTTP/1.1\r\nHost: attacker.example\r\n\r\n", 421),
        ("BREW / HTTP/1.1\r\nHost: attacker.example\r\n\r\n", 421),
    ],
)
def test_bad_or_foreign_host_headers(sandbox: Sandbox, head: str, status: int) -> None:
    answer_status, answer = raw(sandbox, head)
    assert answer_status == status, answer[:200]
    assert b"Connection: close" in answer


def test_refusal_comes_before_100_continue_and_the_body(sandbox: Sandbox) -> None:
    body = json.dumps({"client_id": DEFAULT_MERCHANT.client_id, "fault": "drop"}).encode()
    head = (
        "POST /sandbox/faults HTTP/1.1\r\nHost: attacker.example\r\n"
        "Content-Type: application/json\r\nExpect: 100-continue\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    status, answer = raw(sandbox, head, body)
    assert status == 421
    assert b"100 Continue" not in answer
    assert sandbox.faults.describe() == NO_FAULTS


def test_a_refused_host_is_logged_once_as_a_warning(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="cmi_core.sandbox"):
        for _ in range(3):
            requests.get(sandbox.base_url + "/", headers={"Host": EVIL}, timeout=5)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert EVIL in warnings[0].getMessage()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert sandbox.store.list_orders() == []


# Served ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:{port}",
        "LocalHost:{port}",
        "localhost.:{port}",
        "127.0.0.1",
        "127.0.0.1:{port}",
        "[::1]",
        "[::1]:{port}",
        "::1",
        "0.0.0.0:{port}",  # what http://0.0.0.0:8765 sends (a sandbox bound on 0.0.0.0)
        "192.168.1.20:{port}",  # a LAN address: an address cannot be rebound
        "[fe80::1%25eth0]:{port}",
    ],
)
def test_own_hosts_are_served(sandbox: Sandbox, host: str) -> None:
    headers = {"Host": host.format(port=sandbox.port)}
    health = requests.get(f"{sandbox.base_url}/sandbox/health", headers=headers, timeout=5)
    assert health.json() == {"status": "ok"}
    switch = requests.post(
        f"{sandbox.base_url}/sandbox/faults",
        json={"oid": "HOST-OK", "fault": "drop"},
        headers=headers,
        timeout=5,
    )
    assert switch.status_code == 200
    assert switch.json()["orders"][0]["oid"] == "HOST-OK"


def test_http_1_0_may_omit_host(sandbox: Sandbox) -> None:
    status, answer = raw(sandbox, "GET /sandbox/health HTTP/1.0\r\n\r\n")
    assert status == 200
    assert b'"status": "ok"' in answer


def test_same_origin_forms_still_work_under_localhost(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    """The Merchant Center's "Réessayer" posted from http://localhost:PORT (Origin = Host)."""
    callback = refused_callback(sandbox, merchant, browser, "LOCAL-1")
    host = f"localhost:{sandbox.port}"
    answer = retry_as(sandbox, callback, host)
    assert answer.status_code == 303
    order = sandbox.order("LOCAL-1")
    assert order is not None
    assert order.state == "POST"


def test_demo_shop_builds_its_urls_from_an_allowed_host(sandbox: Sandbox) -> None:
    host = f"localhost:{sandbox.port}"
    shop = requests.get(f"{sandbox.base_url}/demo/", headers={"Host": host}, timeout=5)
    action, fields, _ = forms(shop.text)["pay"]
    assert action == f"http://{host}/fim/est3dgate"
    values = dict(fields)
    assert values["okUrl"] == f"http://{host}/demo/ok"
    # The emulator calls its own demo shop back at its base URL, an allowed host too.
    assert values["CallbackURL"] == f"{sandbox.base_url}/demo/callback"


# Operator-allowed hosts ----------------------------------------------------------------------


def test_operator_allowed_hosts(merchant: Merchant) -> None:
    allowed = ["cmi-sandbox", "Sandbox.Test.", ".docker.internal"]
    with Sandbox(port=0, allowed_hosts=allowed) as sandbox:
        for host in (
            "cmi-sandbox:8765",
            "sandbox.test",
            "SANDBOX.TEST:1",
            "docker.internal",
            "host.docker.internal:8765",
            "localhost:8765",
        ):
            answer = requests.get(
                f"{sandbox.base_url}/sandbox/health", headers={"Host": host}, timeout=5
            )
            assert answer.status_code == 200, host
        for host in ("sandbox.test.evil", "xdocker.internal", "cmi-sandbox2", EVIL):
            answer = requests.get(
                f"{sandbox.base_url}/sandbox/health", headers={"Host": host}, timeout=5
            )
            assert answer.status_code == 421, host
        # A whole payment under the operator's name (e.g. a docker compose service name).
        fields = payment_fields(sandbox, merchant, oid="DOCKER-1")
        http = requests.Session()
        http.headers["Host"] = "cmi-sandbox:8765"
        page = http.post(sandbox.gateway_url, data=fields, timeout=5)
        token = dict(forms(page.text)["card"][1])["session"]
        http.post(
            sandbox.gateway_url + "/pay",
            data={
                "session": token,
                "pan": "4111111111111111",
                "Ecom_Payment_Card_ExpDate_Month": "12",
                "Ecom_Payment_Card_ExpDate_Year": "34",
                "cv2": "123",
            },
            timeout=5,
        )
        order = sandbox.order("DOCKER-1")
        assert order is not None
        assert order.state == "POST"


def test_star_allows_any_host() -> None:
    with Sandbox(port=0, allowed_hosts=["*"]) as sandbox:
        answer = requests.get(
            f"{sandbox.base_url}/sandbox/health", headers={"Host": EVIL}, timeout=5
        )
        assert answer.status_code == 200
        assert "DNS rebinding check is off" in banner(sandbox)


def test_the_listening_name_is_allowed() -> None:
    with Sandbox(host="localhost", port=0) as sandbox:
        assert sandbox.host_policy.allows("localhost")
    policy = HostPolicy("MyBox.lan")
    assert policy.allows("mybox.lan")
    assert not policy.allows("attacker.example")
    for wildcard in ("0.0.0.0", "::", ""):  # noqa: S104 - listening addresses, not binds
        assert HostPolicy(wildcard).names == frozenset({"localhost", "127.0.0.1", "::1"})


def test_allowed_hosts_from_the_command_line_and_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "sandbox.json"
    config.write_text(
        json.dumps({"allowed_hosts": ["from-file.test"], "port": 0}), encoding="utf-8"
    )
    args = build_cli_parser().parse_args(
        [
            "--config",
            str(config),
            "--allowed-host",
            "cmi-sandbox",
            "--allowed-host",
            ".lan",
            "--data-dir",
            str(tmp_path / "data"),
        ]
    )
    sandbox = _sandbox_from_args(args)
    try:
        sandbox.start()
        for host in ("from-file.test", "cmi-sandbox", "box.lan", "localhost"):
            answer = requests.get(
                f"{sandbox.base_url}/sandbox/health", headers={"Host": host}, timeout=5
            )
            assert answer.status_code == 200, host
        assert (
            requests.get(f"{sandbox.base_url}/", headers={"Host": EVIL}, timeout=5).status_code
            == 421
        )
        text = banner(sandbox)
        assert "localhost, IP addresses, cmi-sandbox, from-file.test, .lan" in text
    finally:
        sandbox.stop()
    assert build_cli_parser().parse_args([]).allowed_host == []


@pytest.mark.parametrize(
    "value", ["sandbox.test:8765", "http://sandbox.test", "sandbox.test/x", "", "a b", "é.test"]
)
def test_bad_allowed_hosts_are_refused(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="allowed host"):
        normalize_allowed_host(value)
    code = main(["--allowed-host", value, "--port", "0", "--data-dir", str(tmp_path)])
    assert code == 2
    assert "allowed host" in capsys.readouterr().err


def test_allowed_hosts_in_the_config_file_must_be_a_list(tmp_path: Path) -> None:
    config = tmp_path / "sandbox.json"
    config.write_text(json.dumps({"allowed_hosts": "one.test"}), encoding="utf-8")
    args = build_cli_parser().parse_args(["--config", str(config)])
    with pytest.raises(ValueError, match="allowed_hosts"):
        _sandbox_from_args(args)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("localhost:8765", "localhost"),
        ("LOCALHOST.", "localhost"),
        ("[::1]:8765", "::1"),
        ("::1", "::1"),
        ("[fe80::1%25eth0]", "fe80::1%eth0"),
        ("127.0.0.1:", "127.0.0.1"),
        ("cmi_sandbox:8765", "cmi_sandbox"),
        ("[127.0.0.1]", None),
        ("[::1", None),
        ("a..b", None),
        (".a", None),
        ("a:b", None),
        ("", None),
    ],
)
def test_host_name(value: str, expected: str | None) -> None:
    assert host_name(value) == expected


def test_normalize_allowed_host() -> None:
    assert normalize_allowed_host(" Sandbox.Test. ") == "sandbox.test"
    assert normalize_allowed_host(".Docker.Internal") == ".docker.internal"
    assert normalize_allowed_host("[::1]") == "::1"
    assert normalize_allowed_host("*") == "*"


# In Chromium ---------------------------------------------------------------------------------


@pytest.mark.browser
def test_rebound_page_in_chromium_cannot_drive_the_sandbox(chromium: Any, sandbox: Sandbox) -> None:
    """A real rebinding: Chromium resolves attacker.example to 127.0.0.1."""
    rebound = chromium.browser_type.launch(
        executable_path=CHROMIUM,
        args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {EVIL} 127.0.0.1"],
    )
    try:
        page = rebound.new_page()
        page.set_default_timeout(15_000)
        origin = f"http://{EVIL}:{sandbox.port}"
        response = page.goto(f"{origin}/merchant/")
        assert response is not None
        assert response.status == 421
        assert "DNS rebinding" in page.inner_text("body")
        # The page's own origin is attacker.example: a same-origin fetch, JSON and all.
        result = page.evaluate(
            """async () => {
                const answer = await fetch("/sandbox/faults", {
                    method: "POST",
                    headers: {"Content-Type": "application/json"},
                    body: JSON.stringify({client_id: "600000001", fault: "drop"}),
                });
                return [answer.status, await answer.text()];
            }"""
        )
        assert result[0] == 421
        assert sandbox.faults.describe() == NO_FAULTS
    finally:
        rebound.close()


@pytest.mark.browser
def test_demo_shop_in_chromium_under_localhost(page: Any, sandbox: Sandbox) -> None:
    """http://localhost:PORT/demo/: the demo's own URLs, the card form, okUrl, all served."""
    base = f"http://localhost:{sandbox.port}"
    page.goto(f"{base}/demo/?lang=en")
    oid = page.locator("#pay input[name=oid]").input_value()
    page.locator("#pay button").click()
    page.wait_for_selector("#pan")
    page.fill("#pan", "4111 1111 1111 1111")
    page.fill("#month", "12")
    page.fill("#year", "34")
    page.fill("#cv2", "123")
    page.get_by_role("button", name="Pay").click()
    page.wait_for_selector("#result")
    page.locator("#return button").click()
    page.wait_for_url(f"{base}/demo/ok")
    assert "Paiement accepté" in page.inner_text("#outcome")
    order = sandbox.order(oid)
    assert order is not None
    assert order.state == "POST"
