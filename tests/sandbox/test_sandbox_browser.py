"""The hosted payment page in a real browser (Debian Chromium through Playwright)."""

from __future__ import annotations

from html import escape
from typing import Any

import pytest

from cmi_core.hashing import verify_hash
from cmi_core.sandbox import DEFAULT_MERCHANT, Sandbox

from .support import Merchant, payment_fields

pytestmark = pytest.mark.browser


def merchant_form(fields: list[tuple[str, str]], action: str) -> str:
    """The merchant's page: an auto-submitted form, as cmi_core.form renders it."""
    inputs = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in fields
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
        f'<form id="f" method="post" action="{escape(action)}">{inputs}'
        '<button type="submit">go</button></form>'
        '<script>document.getElementById("f").submit()</script></body></html>'
    )


@pytest.mark.parametrize(
    ("lang", "direction", "label", "pay"),
    [
        ("fr", "ltr", "Numéro de carte", "Payer"),
        ("en", "ltr", "Card number", "Pay"),
        ("ar", "rtl", "رقم البطاقة", "ادفع"),
    ],
)
def test_hosted_page_in_a_browser(
    page: Any,
    sandbox: Sandbox,
    merchant: Merchant,
    *,
    lang: str,
    direction: str,
    label: str,
    pay: str,
) -> None:
    oid = f"BROWSER-{lang.upper()}"
    fields = payment_fields(sandbox, merchant, oid=oid, lang=lang, auto_redirect=(lang == "fr"))
    page.set_content(merchant_form(fields, sandbox.gateway_url))
    page.wait_for_selector("#pan")
    assert page.evaluate("document.documentElement.dir") == direction
    assert page.evaluate("document.documentElement.lang") == lang
    assert direction == page.evaluate("getComputedStyle(document.body).direction")
    assert label in page.inner_text("body")
    assert oid in page.inner_text("body")
    page.fill("#pan", "4111 1111 1111 1111")
    page.fill("#month", "12")
    page.fill("#year", "34")
    page.fill("#cv2", "123")
    page.get_by_role("button", name=pay).click()
    if lang == "fr":
        # AutoRedirect=true: the result page submits itself to okUrl.
        page.wait_for_url(f"{merchant.base_url}/ok")
    else:
        page.wait_for_selector("#result")
        assert page.locator("#return button").count() == 1
        page.locator("#return button").click()
        page.wait_for_url(f"{merchant.base_url}/ok")
    [ok] = merchant.wait_for("/ok", 1)
    verify_hash(ok.values, DEFAULT_MERCHANT.store_key)
    assert ok.values["Response"] == "Approved"
    assert ok.values["oid"] == oid
    assert merchant.callbacks[0].values["ProcReturnCode"] == "00"
    order = sandbox.order(oid)
    assert order is not None
    assert order.state == "POST"
