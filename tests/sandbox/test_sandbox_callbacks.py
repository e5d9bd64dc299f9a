"""The merchant's reply to the callback (guide §4.2.1), fault switches, "Réessayer"."""

from __future__ import annotations

import time

import pytest
import requests

from cmi_core.errors import SignatureError
from cmi_core.hashing import verify_hash
from cmi_core.sandbox import DEFAULT_MERCHANT, Fault, Sandbox

from .support import Browser, Merchant, Received, payment_fields

KEY = DEFAULT_MERCHANT.store_key


def pay(sandbox: Sandbox, merchant: Merchant, browser: Browser, oid: str, **order: object) -> None:
    browser.open(payment_fields(sandbox, merchant, oid=oid, **order))
    browser.pay()


def state(sandbox: Sandbox, oid: str) -> tuple[str, bool]:
    order = sandbox.order(oid)
    assert order is not None
    return order.state, order.flagged


def test_postauth_reply_captures(sandbox: Sandbox, merchant: Merchant, browser: Browser) -> None:
    merchant.reply = "  ACTION=POSTAUTH\r\n"  # whitespace around the reply is ignored
    pay(sandbox, merchant, browser, "CB-POST")
    assert state(sandbox, "CB-POST") == ("POST", False)
    order = sandbox.order("CB-POST")
    assert order is not None
    types = [t.type for t in sandbox.store.transactions(order.id)]
    assert types == ["PreAuth", "PostAuth"]
    [callback] = sandbox.store.callbacks(order.id)
    assert callback.status == "OK"
    assert callback.http_status == 200
    assert callback.reply.strip() == "ACTION=POSTAUTH"


def test_approved_reply_leaves_pre(sandbox: Sandbox, merchant: Merchant, browser: Browser) -> None:
    merchant.reply = "APPROVED"
    pay(sandbox, merchant, browser, "CB-PRE")
    assert state(sandbox, "CB-PRE") == ("PRE", False)


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        ("FAILURE", "FAILURE"),
        ("OK", "INVALID_REPLY"),
        ("action=postauth", "INVALID_REPLY"),
        ("", "INVALID_REPLY"),
    ],
)
def test_other_replies_leave_pre_and_flag(
    sandbox: Sandbox, merchant: Merchant, browser: Browser, reply: str, status: str
) -> None:
    merchant.reply = reply
    pay(sandbox, merchant, browser, "CB-FLAG")
    assert state(sandbox, "CB-FLAG") == ("PRE", True)
    order = sandbox.order("CB-FLAG")
    assert order is not None
    assert sandbox.store.callbacks(order.id)[0].status == status


def test_http_error_flags(sandbox: Sandbox, merchant: Merchant, browser: Browser) -> None:
    merchant.reply = lambda r: (500, "ACTION=POSTAUTH")
    pay(sandbox, merchant, browser, "CB-500")
    assert state(sandbox, "CB-500") == ("PRE", True)
    order = sandbox.order("CB-500")
    assert order is not None
    callback = sandbox.store.callbacks(order.id)[0]
    assert (callback.status, callback.http_status) == ("HTTP_ERROR", 500)


def test_timeout_flags(sandbox: Sandbox, merchant: Merchant, browser: Browser) -> None:
    merchant.delay = 1.3  # the sandbox waits 1 s (callback_timeout of the fixture)
    pay(sandbox, merchant, browser, "CB-SLOW")
    assert state(sandbox, "CB-SLOW") == ("PRE", True)
    order = sandbox.order("CB-SLOW")
    assert order is not None
    assert sandbox.store.callbacks(order.id)[0].status == "TIMEOUT"


def test_unreachable_callback_url_flags(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    pay(sandbox, merchant, browser, "CB-DOWN", callback_url="http://127.0.0.1:9/callback")
    assert state(sandbox, "CB-DOWN") == ("PRE", True)


def test_failed_attempt_replies_do_not_flag(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    merchant.reply = "FAILURE"
    browser.open(payment_fields(sandbox, merchant, oid="CB-DECL"))
    browser.pay(pan="4000000000000051")
    assert state(sandbox, "CB-DECL") == ("DECL", False)


def test_retry_button_resends_and_can_capture(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    merchant.reply = "FAILURE"
    pay(sandbox, merchant, browser, "CB-RETRY")
    assert state(sandbox, "CB-RETRY") == ("PRE", True)
    page = requests.get(f"{sandbox.base_url}/merchant/order/CB-RETRY", timeout=5).text
    assert "Réessayer" in page
    assert "FAILURE" in page
    order = sandbox.order("CB-RETRY")
    assert order is not None
    [first] = sandbox.store.callbacks(order.id)
    assert f'action="/merchant/callback/{first.id}/retry"' in page
    merchant.reply = "ACTION=POSTAUTH"
    answer = requests.post(f"{sandbox.base_url}/merchant/callback/{first.id}/retry", timeout=5)
    assert answer.status_code == 200  # followed the 303 to the order page
    assert answer.url.endswith("/merchant/order/CB-RETRY")
    assert len(merchant.callbacks) == 2
    assert merchant.callbacks[1].fields == merchant.callbacks[0].fields
    assert state(sandbox, "CB-RETRY") == ("POST", False)
    assert "ACTION=POSTAUTH" in answer.text


def test_retry_of_unknown_callback_is_404(sandbox: Sandbox) -> None:
    answer = requests.post(f"{sandbox.base_url}/merchant/callback/999/retry", timeout=5)
    assert answer.status_code == 404


def test_merchant_center_lists_orders(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    pay(sandbox, merchant, browser, "MC-1")
    merchant.reply = "APPROVED"
    pay(sandbox, merchant, browser, "MC-2")
    page = requests.get(f"{sandbox.base_url}/merchant/", timeout=5).text
    assert 'data-oid="MC-1"' in page
    assert 'data-oid="MC-2"' in page
    assert ">POST<" in page
    assert ">PRE<" in page
    detail = requests.get(f"{sandbox.base_url}/merchant/order/MC-1", timeout=5).text
    assert "PostAuth" in detail
    assert "PreAuth" in detail
    assert requests.get(f"{sandbox.base_url}/merchant/order/NOPE", timeout=5).status_code == 404


def test_merchant_center_escapes_values(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    merchant.reply = "<script>alert(1)</script>"
    pay(sandbox, merchant, browser, "MC-XSS")
    detail = requests.get(f"{sandbox.base_url}/merchant/order/MC-XSS", timeout=5).text
    assert "<script>alert(1)</script>" not in detail
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail


# Fault switches -------------------------------------------------------------------------


def test_fault_delay(sandbox: Sandbox, merchant: Merchant, browser: Browser) -> None:
    sandbox.set_fault("delay", oid="F-DELAY", seconds=0.3)
    started = time.monotonic()
    pay(sandbox, merchant, browser, "F-DELAY")
    assert merchant.callbacks == []  # the shopper's page came first
    browser.follow_return()
    assert len(merchant.posts("/ok")) == 1
    [callback] = merchant.wait_for("/callback", 1)
    assert callback.at - started >= 0.3
    assert callback.at > merchant.posts("/ok")[0].at
    sandbox.wait_for_callbacks()
    assert state(sandbox, "F-DELAY") == ("POST", False)


def test_fault_drop(sandbox: Sandbox, merchant: Merchant, browser: Browser) -> None:
    sandbox.set_fault("drop", oid="F-DROP")
    pay(sandbox, merchant, browser, "F-DROP")
    browser.follow_return()
    assert merchant.callbacks == []
    assert len(merchant.posts("/ok")) == 1
    assert state(sandbox, "F-DROP") == ("PRE", False)
    order = sandbox.order("F-DROP")
    assert order is not None
    [dropped] = sandbox.store.callbacks(order.id)
    assert dropped.status == "DROPPED"


def test_fault_twice(sandbox: Sandbox, merchant: Merchant, browser: Browser) -> None:
    sandbox.set_fault("twice", oid="F-TWICE")
    pay(sandbox, merchant, browser, "F-TWICE")
    first, second = merchant.callbacks
    assert first.fields == second.fields
    order = sandbox.order("F-TWICE")
    assert order is not None
    types = [t.type for t in sandbox.store.transactions(order.id)]
    assert types == ["PreAuth", "PostAuth"]  # captured once


def test_fault_concurrent(sandbox: Sandbox, merchant: Merchant, browser: Browser) -> None:
    merchant.delay = 0.2  # both requests are in the merchant's hands at the same time
    sandbox.set_fault("concurrent", oid="F-CONC")
    pay(sandbox, merchant, browser, "F-CONC")
    first, second = merchant.callbacks
    assert abs(first.at - second.at) < 0.15
    assert first.fields == second.fields
    order = sandbox.order("F-CONC")
    assert order is not None
    assert [t.type for t in sandbox.store.transactions(order.id)] == ["PreAuth", "PostAuth"]


def test_fault_stale_sends_the_old_failure_after_the_success(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    merchant.reply = lambda r: (
        200,
        "ACTION=POSTAUTH" if r.values["ProcReturnCode"] == "00" else "APPROVED",
    )
    sandbox.set_fault("stale", oid="F-STALE")
    browser.open(payment_fields(sandbox, merchant, oid="F-STALE"))
    browser.pay(pan="4000000000000515")
    browser.pay()
    codes = [c.values["ProcReturnCode"] for c in merchant.callbacks]
    assert codes == ["51", "00", "51"]
    assert merchant.callbacks[2].fields == merchant.callbacks[0].fields
    verify_hash(merchant.callbacks[2].values, KEY)
    assert state(sandbox, "F-STALE") == ("POST", False)


def test_fault_stale_without_earlier_failure_makes_one_up(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    sandbox.set_fault("stale", oid="F-STALE2")
    merchant.reply = lambda r: (
        200,
        "ACTION=POSTAUTH" if r.values["ProcReturnCode"] == "00" else "APPROVED",
    )
    pay(sandbox, merchant, browser, "F-STALE2")
    first, stale = merchant.callbacks
    assert first.values["ProcReturnCode"] == "00"
    assert stale.values["ProcReturnCode"] == "05"
    assert stale.values["TransId"] != first.values["TransId"]
    verify_hash(stale.values, KEY)
    assert state(sandbox, "F-STALE2") == ("POST", False)


def test_fault_corrupt_hash(sandbox: Sandbox, merchant: Merchant, browser: Browser) -> None:
    def reply(received: Received) -> tuple[int, str]:
        try:
            verify_hash(received.values, KEY)
        except SignatureError:
            return 200, "FAILURE"
        return 200, "ACTION=POSTAUTH"

    merchant.reply = reply
    sandbox.set_fault("corrupt_hash", oid="F-HASH")
    pay(sandbox, merchant, browser, "F-HASH")
    with pytest.raises(SignatureError):
        verify_hash(merchant.callbacks[0].values, KEY)
    assert state(sandbox, "F-HASH") == ("PRE", True)
    # The browser's return POST is not corrupted.
    _, fields = browser.return_form()
    verify_hash(dict(fields), KEY)


def test_merchant_fault_applies_to_every_order_and_order_fault_wins(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    sandbox.set_fault("drop", client_id=DEFAULT_MERCHANT.client_id)
    sandbox.set_fault(Fault(twice=True), oid="F-MINE")
    pay(sandbox, merchant, browser, "F-ANY")
    assert merchant.callbacks == []
    pay(sandbox, merchant, browser, "F-MINE")
    assert len(merchant.callbacks) == 2
    sandbox.clear_faults()
    pay(sandbox, merchant, browser, "F-AFTER")
    assert len(merchant.callbacks) == 3


def test_faults_over_http(sandbox: Sandbox, merchant: Merchant, browser: Browser) -> None:
    url = f"{sandbox.base_url}/sandbox/faults"
    answer = requests.post(url, json={"oid": "F-HTTP", "fault": "drop"}, timeout=5)
    assert answer.status_code == 200
    assert answer.json()["orders"][0]["drop"] is True
    pay(sandbox, merchant, browser, "F-HTTP")
    assert merchant.callbacks == []
    same_site = {"Origin": sandbox.base_url}  # a form is taken from this host's pages only
    form = requests.post(url, data={"oid": "F-HTTP", "fault": "none"}, headers=same_site, timeout=5)
    assert form.json()["orders"] == []
    delay = requests.post(
        url,
        data={"client_id": DEFAULT_MERCHANT.client_id, "fault": "delay", "seconds": "0.2"},
        headers=same_site,
        timeout=5,
    )
    assert delay.json()["merchants"][DEFAULT_MERCHANT.client_id]["delay"] == 0.2
    assert requests.get(url, timeout=5).json()["merchants"]
    requests.post(url, json={"fault": "clear_all"}, timeout=5)
    assert requests.get(url, timeout=5).json() == {"merchants": {}, "orders": []}


@pytest.mark.parametrize(
    "payload",
    [
        {"oid": "X", "fault": "explode"},
        {"fault": "drop"},
        {"oid": "X", "fault": "delay"},
        {"oid": "X", "fault": "delay", "seconds": "soon"},
    ],
)
def test_bad_fault_requests_are_400(sandbox: Sandbox, payload: dict[str, str]) -> None:
    answer = requests.post(f"{sandbox.base_url}/sandbox/faults", json=payload, timeout=5)
    assert answer.status_code == 400
    assert "error" in answer.json()
    broken = requests.post(
        f"{sandbox.base_url}/sandbox/faults",
        data=b"[1, 2",
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert broken.status_code == 400


# Review fixes ------------------------------------------------------------------------------


def test_deeply_nested_fault_json_is_400(sandbox: Sandbox) -> None:
    for body in (b"[" * 100000, b'{"a":' * 100000):
        answer = requests.post(
            f"{sandbox.base_url}/sandbox/faults",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=5,
        )
        assert answer.status_code == 400
        assert "error" in answer.json()


def test_field_lookup_is_case_insensitive_everywhere() -> None:
    from cmi_core.sandbox import callbacks, gateway
    from cmi_core.sandbox.fields import field

    fields = [("PROCRETURNCODE", "00"), ("response", "Approved"), ("oid", "A")]
    assert field(fields, "ProcReturnCode") == "00"
    assert field(fields, "missing") == ""
    assert callbacks.is_approval(fields)
    assert not callbacks.is_approval([("procreturncode", "05"), ("Response", "Declined")])
    assert vars(gateway)["field"] is field  # one helper, shared


def test_one_signer_signs_like_cmi_and_corrupts_on_demand() -> None:
    from cmi_core.sandbox import callbacks, fields, gateway, results
    from cmi_core.testing import sign as reference

    unsigned = [("oid", "A-1"), ("amount", "10.00"), ("encoding", "UTF-8"), ("hash", "old")]
    signed = fields.sign(unsigned, KEY)
    # Every field kept (encoding too: CMI echoes it), the request's hash replaced by HASH.
    assert [name for name, _ in signed] == ["oid", "amount", "encoding", "HASH"]
    assert dict(signed)["HASH"] == reference(dict(unsigned), KEY)["HASH"]
    verify_hash(dict(signed), KEY)
    corrupted = fields.sign(unsigned, KEY, corrupt=True)
    assert corrupted[:-1] == signed[:-1]
    with pytest.raises(SignatureError):
        verify_hash(dict(corrupted), KEY)
    assert vars(gateway)["sign"] is vars(callbacks)["sign"] is fields.sign
    assert not hasattr(results, "sign")


def test_merchant_center_formats_money_with_the_core() -> None:
    from decimal import Decimal

    from cmi_core.money import get_currency
    from cmi_core.sandbox import merchant_center

    mad, tnd, jpy = get_currency("504"), get_currency("788"), get_currency("392")
    assert merchant_center._money(Decimal("120.5"), mad) == "120.50 MAD"
    assert merchant_center._money(Decimal(0), mad) == "0.00 MAD"
    assert merchant_center._money(Decimal("0.00"), tnd) == "0.000 TND"
    assert merchant_center._money(Decimal(0), jpy) == "0 JPY"


def _flagged_order(sandbox: Sandbox, merchant: Merchant, browser: Browser, oid: str) -> int:
    merchant.reply = "FAILURE"
    pay(sandbox, merchant, browser, oid)
    order = sandbox.order(oid)
    assert order is not None
    [first] = sandbox.store.callbacks(order.id)
    merchant.reply = "ACTION=POSTAUTH"
    return first.id


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/page"},
        {"Origin": "http://127.0.0.1:1"},  # another port is another site
    ],
)
def test_cross_site_retry_is_refused(
    sandbox: Sandbox, merchant: Merchant, browser: Browser, headers: dict[str, str]
) -> None:
    callback_id = _flagged_order(sandbox, merchant, browser, "CB-CSRF")
    answer = requests.post(
        f"{sandbox.base_url}/merchant/callback/{callback_id}/retry",
        headers=headers,
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 403
    assert len(merchant.callbacks) == 1
    assert state(sandbox, "CB-CSRF") == ("PRE", True)


@pytest.mark.parametrize("header", ["Origin", "Referer"])
def test_same_origin_retry_works(
    sandbox: Sandbox, merchant: Merchant, browser: Browser, header: str
) -> None:
    """The Merchant Center's own "Réessayer" button posts with this host as Origin."""
    callback_id = _flagged_order(sandbox, merchant, browser, "CB-SAME")
    page = f"{sandbox.base_url}/merchant/order/CB-SAME"
    value = sandbox.base_url if header == "Origin" else page
    answer = requests.post(
        f"{sandbox.base_url}/merchant/callback/{callback_id}/retry",
        headers={header: value},
        timeout=5,
    )
    assert answer.status_code == 200
    assert answer.url == page
    assert state(sandbox, "CB-SAME") == ("POST", False)


@pytest.mark.parametrize(
    ("data", "headers"),
    [
        # What another site's <form> or no-cors fetch can send:
        ("oid=X&fault=drop", {"Content-Type": "application/x-www-form-urlencoded"}),
        (
            "oid=X&fault=drop",
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": "http://evil.example",
            },
        ),
        ('{"oid": "X", "fault": "drop"}', {"Content-Type": "text/plain; x=json"}),
        ('{"oid": "X", "fault": "drop"}', {"Content-Type": "text/plain"}),
        (
            '{"oid": "X", "fault": "drop"}',
            {"Content-Type": "application/json", "Origin": "http://evil.example"},
        ),
    ],
)
def test_cross_site_fault_switches_are_refused(
    sandbox: Sandbox, data: str, headers: dict[str, str]
) -> None:
    answer = requests.post(
        f"{sandbox.base_url}/sandbox/faults", data=data, headers=headers, timeout=5
    )
    assert answer.status_code == 403
    assert "error" in answer.json()
    assert sandbox.faults.describe() == {"merchants": {}, "orders": []}
