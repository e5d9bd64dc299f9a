"""The hosted payment page end to end: request checks, test cards, callbacks, return POST.

Real HTTP on loopback: the core builds the signed request, ``requests`` plays the
shopper's browser, a small merchant server receives the callback and the return POST.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from cmi_core.errors import SignatureError
from cmi_core.hashing import verify_hash
from cmi_core.sandbox import (
    CHALLENGE_CODE,
    DEFAULT_MERCHANT,
    TEST_CARDS,
    ManualClock,
    Sandbox,
    TestCard,
)

from .support import Browser, Merchant, forms, payment_fields, resign

KEY = DEFAULT_MERCHANT.store_key


def test_approved_card_end_to_end(sandbox: Sandbox, merchant: Merchant, browser: Browser) -> None:
    fields = payment_fields(sandbox, merchant, oid="ORD-OK-1")
    page = browser.open(fields)
    assert page.status_code == 200
    assert "ORD-OK-1" in page.text
    result = browser.pay(cardHolderName="Amina Test")
    assert result.status_code == 200
    [callback] = merchant.callbacks
    values = callback.values
    verify_hash(values, KEY)
    assert values["Response"] == "Approved"
    assert values["ProcReturnCode"] == "00"
    assert values["mdStatus"] == "1"
    assert values["txstatus"] == "Y"
    assert values["MaskedPan"] == "411111***1111"
    assert values["oid"] == values["ReturnOid"] == "ORD-OK-1"
    assert values["cardHolderName"] == "Amina Test"
    order = sandbox.order("ORD-OK-1")
    assert order is not None
    assert order.state == "POST"
    action, return_fields = browser.return_form()
    assert action == f"{merchant.base_url}/ok"
    assert dict(return_fields)["HASH"] == values["HASH"]
    verify_hash(dict(return_fields), KEY)
    browser.follow_return()
    [ok] = merchant.posts("/ok")
    assert ok.values["Response"] == "Approved"
    assert merchant.posts("/fail") == []


def test_callback_fields_are_named_and_formatted_like_the_guide(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    fields = payment_fields(sandbox, merchant, description="Deux articles")
    browser.open(fields)
    browser.pay(month="07", year="2031")
    values = merchant.callbacks[0].values
    # Every request field comes back, except its hash (the result carries HASH).
    for name, value in fields:
        if name != "hash":
            assert values[name] == value, name
    assert "hash" not in values
    assert re.fullmatch(r"\d{2}/\d{2}/0\d{4} \d{2}:\d{2}:\d{2}", values["EXTRA.TRXDATE"])
    assert values["EXTRA.TRXDATE"] == "10/06/02025 10:00:00"  # 09:00 UTC is 10:00 in Casablanca
    assert re.fullmatch(r"\d{12}", values["HostRefNum"])
    assert values["HostRefNum"].endswith(values["acqStan"].zfill(6))
    assert re.fullmatch(r"\d{6}", values["AuthCode"])
    assert re.fullmatch(r"\d{5}[A-Z][A-Z0-9]{3}\d{5}", values["TransId"])
    assert values["EXTRA.CARDBRAND"] == "VISA"
    assert values["EXTRA.CARDISSUER"]
    assert values["paymentType"] == "CARD"
    assert values["merchantID"] == DEFAULT_MERCHANT.client_id
    assert values["clientIp"] == "127.0.0.1"
    assert values["Ecom_Payment_Card_ExpDate_Year"] == "31"
    assert values["Ecom_Payment_Card_ExpDate_Month"] == "07"
    assert values["eci"] == "05"
    assert len(values["cavv"]) == 28
    assert len(values["xid"]) == 28
    assert values["md"].startswith("411111:")
    assert values["ErrMsg"] == ""
    assert "ErrCode" not in values
    assert list(values)[-1] == "HASH"


def test_bad_hash_gives_3d_1004(sandbox: Sandbox, merchant: Merchant, browser: Browser) -> None:
    fields = payment_fields(sandbox, merchant, oid="ORD-BADHASH")
    tampered = [(k, "1.00" if k == "amount" else v) for k, v in fields]
    page = browser.open(tampered)
    assert page.status_code == 400
    assert "3D-1004" in page.text
    assert "Wrong security code" in page.text
    assert 'name="pan"' not in page.text
    action, back = forms(page.text)["return"][:2]
    assert action == f"{merchant.base_url}/fail"
    assert dict(back)["ProcReturnCode"] == "99"
    assert dict(back)["ErrCode"] == "3D-1004"
    assert dict(back)["Response"] == "Error"
    assert sandbox.order("ORD-BADHASH") is None
    assert merchant.callbacks == []


def test_hash_with_another_store_key_is_refused(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    page = browser.open(resign(payment_fields(sandbox, merchant), "NOT-THE-KEY"))
    assert "3D-1004" in page.text


@pytest.mark.parametrize("missing", ["email", "BillToName", "okUrl", "rnd", "hash"])
def test_missing_field_has_its_own_error(
    sandbox: Sandbox, merchant: Merchant, browser: Browser, missing: str
) -> None:
    fields = [(k, v) for k, v in payment_fields(sandbox, merchant) if k != missing]
    page = browser.open(fields if missing == "hash" else resign(fields))
    assert page.status_code == 400
    assert missing in page.text
    assert "3D-1004" not in page.text
    assert 'name="pan"' not in page.text


def test_invalid_field_format_is_refused(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    fields = [
        (k, "not-an-email" if k == "email" else v) for k, v in payment_fields(sandbox, merchant)
    ]
    page = browser.open(resign(fields))
    assert page.status_code == 400
    assert "email" in page.text


def test_duplicate_field_is_core_5110(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    fields = payment_fields(sandbox, merchant)
    page = browser.open([*fields, ("oid", "OTHER")])
    assert page.status_code == 400
    assert "CORE-5110" in page.text


def test_unknown_merchant(sandbox: Sandbox, merchant: Merchant, browser: Browser) -> None:
    fields = [
        (k, "999999999" if k == "clientid" else v) for k, v in payment_fields(sandbox, merchant)
    ]
    page = browser.open(resign(fields))
    assert page.status_code == 400
    assert "clientid" in page.text


def test_payment_page_shows_order_and_card_form(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    fields = payment_fields(
        sandbox,
        merchant,
        oid="ORD-PAGE",
        amount=Decimal("1234.5"),
        amount_cur=Decimal("113.40"),
        symbol_cur="EUR",
    )
    page = browser.open(fields).text
    assert DEFAULT_MERCHANT.name in page
    assert "ORD-PAGE" in page
    assert "1234.50 MAD" in page
    assert "113.40 EUR" in page
    for name in ("pan", "Ecom_Payment_Card_ExpDate_Month", "Ecom_Payment_Card_ExpDate_Year", "cv2"):
        assert f'name="{name}"' in page
    assert f'href="{merchant.base_url}/shop"' in page
    assert '<html lang="fr" dir="ltr">' in page
    # The request is kept server-side: the page carries a session token, not the fields.
    card_form = forms(page)["card"]
    assert [name for name, _ in card_form[1]] == ["session"]
    assert "amount" not in {name for name, _ in card_form[1]}


@pytest.mark.parametrize(
    ("lang", "html_tag", "text"),
    [
        ("fr", '<html lang="fr" dir="ltr">', "Numéro de carte"),
        ("en", '<html lang="en" dir="ltr">', "Card number"),
        ("ar", '<html lang="ar" dir="rtl">', "رقم البطاقة"),
    ],
)
def test_page_language(
    sandbox: Sandbox, merchant: Merchant, browser: Browser, *, lang: str, html_tag: str, text: str
) -> None:
    page = browser.open(payment_fields(sandbox, merchant, lang=lang)).text
    assert html_tag in page
    assert text in page


def test_reposted_request_fields_are_ignored(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    browser.open(payment_fields(sandbox, merchant, oid="ORD-REPOST", amount=Decimal("50.00")))
    browser.pay(amount="0.01", oid="HACKED")
    values = merchant.callbacks[0].values
    assert values["amount"] == "50.00"
    assert values["oid"] == "ORD-REPOST"
    assert sandbox.order("HACKED") is None


DECLINES = [card for card in TEST_CARDS if card.kind == "declined"]


@pytest.mark.parametrize("card", DECLINES, ids=[c.proc_return_code for c in DECLINES])
def test_issuer_declines(
    sandbox: Sandbox, merchant: Merchant, browser: Browser, card: TestCard
) -> None:
    merchant.reply = "APPROVED"
    oid = f"ORD-DECL-{card.proc_return_code}"
    browser.open(payment_fields(sandbox, merchant, oid=oid, lang="en"))
    page = browser.pay(pan=card.pan)
    values = merchant.callbacks[0].values
    verify_hash(values, KEY)
    assert values["Response"] == "Declined"
    assert values["ProcReturnCode"] == card.proc_return_code
    assert values["ErrCode"] == f"ISO8583-{card.proc_return_code}"
    assert values["ErrMsg"]
    assert values["AuthCode"] == ""
    assert values["mdStatus"] == "1"
    # The shopper stays on the page and may retry; a button leads back to failUrl.
    assert 'name="pan"' in page.text
    error = page.text.split('id="error">', 1)[1].split("</div>", 1)[0]
    assert error.count("another card") <= 1, error  # said once, not twice
    action, back = browser.return_form()
    assert action == f"{merchant.base_url}/fail"
    assert dict(back)["ProcReturnCode"] == card.proc_return_code
    order = sandbox.order(f"ORD-DECL-{card.proc_return_code}")
    assert order is not None
    assert order.state == "DECL"


@pytest.mark.parametrize(
    ("pan", "month", "year", "cvv", "code"),
    [
        ("4111111111111112", "12", "30", "123", "CORE-2012"),  # Luhn fails
        ("1234", "12", "30", "123", "CORE-2012"),
        ("4111111111111111", "05", "25", "123", "CORE-2010"),  # before June 2025
        ("4111111111111111", "12", "2024", "123", "CORE-2010"),
        ("4111111111111111", "13", "30", "123", "CORE-2515"),
        ("4111111111111111", "12", "30", "12", "CORE-2515"),
        ("4000000000007197", "12", "30", "123", "RULE-0004"),  # valid, not a test card
        ("4000000000000101", "12", "30", "123", "3D-1005"),  # authentication fails
    ],
)
def test_platform_rejections(
    sandbox: Sandbox,
    merchant: Merchant,
    browser: Browser,
    *,
    pan: str,
    month: str,
    year: str,
    cvv: str,
    code: str,
) -> None:
    merchant.reply = "APPROVED"
    browser.open(payment_fields(sandbox, merchant))
    page = browser.pay(pan=pan, month=month, year=year, cvv=cvv)
    assert page.status_code == 200
    values = merchant.callbacks[0].values
    verify_hash(values, KEY)
    assert values["Response"] == "Error"
    assert values["ProcReturnCode"] == "99"
    assert values["ErrCode"] == code
    if code == "3D-1005":
        assert values["mdStatus"] == "0"
        assert values["txstatus"] == "N"


def test_current_month_is_not_expired(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    browser.open(payment_fields(sandbox, merchant))
    browser.pay(month="06", year="25")
    assert merchant.callbacks[0].values["ProcReturnCode"] == "00"


@pytest.mark.parametrize("pan", ["4000000000003220", "5200000000000007"])
def test_challenge_with_the_right_code(
    sandbox: Sandbox, merchant: Merchant, browser: Browser, pan: str
) -> None:
    browser.open(payment_fields(sandbox, merchant, oid="ORD-3DS"))
    page = browser.pay(pan=pan)
    assert 'name="otp"' in page.text
    assert merchant.callbacks == []  # nothing decided before the code
    browser.answer_challenge(CHALLENGE_CODE)
    values = merchant.callbacks[0].values
    assert values["ProcReturnCode"] == "00"
    assert values["mdStatus"] == "1"
    assert values["EXTRA.CARDBRAND"] == ("VISA" if pan.startswith("4") else "MASTERCARD")
    assert browser.return_form()[0].endswith("/ok")


def test_challenge_with_a_wrong_code_is_3d_1005(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    merchant.reply = "APPROVED"
    browser.open(payment_fields(sandbox, merchant))
    browser.pay(pan="4000000000003220")
    page = browser.answer_challenge("000000")
    values = merchant.callbacks[0].values
    assert values["ErrCode"] == "3D-1005"
    assert values["mdStatus"] == "0"
    assert 'name="pan"' in page.text  # may try again


def test_decline_then_approval_on_the_same_order(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    merchant.reply = lambda r: (
        200,
        "ACTION=POSTAUTH" if r.values["ProcReturnCode"] == "00" else "APPROVED",
    )
    browser.open(payment_fields(sandbox, merchant, oid="ORD-RETRY"))
    browser.pay(pan="4000000000000515")
    browser.pay()
    first, second = merchant.callbacks
    assert first.values["ProcReturnCode"] == "51"
    assert second.values["ProcReturnCode"] == "00"
    assert first.values["oid"] == second.values["oid"] == "ORD-RETRY"
    assert first.values["TransId"] != second.values["TransId"]
    order = sandbox.order("ORD-RETRY")
    assert order is not None
    assert order.state == "POST"
    # The session is over: the card form cannot be posted again.
    again = browser.http.post(
        sandbox.gateway_url + "/pay",
        data={"session": forms(browser.page.text if browser.page else "")["return"][1][0][1]},
        timeout=5,
    )
    assert again.status_code == 400


def test_paid_order_cannot_be_paid_again(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    browser.open(payment_fields(sandbox, merchant, oid="ORD-TWICE"))
    browser.pay()
    page = browser.open(payment_fields(sandbox, merchant, oid="ORD-TWICE"))
    assert page.status_code == 400
    assert "CORE-5110" in page.text


def test_session_timeout_gives_rule_0001(
    sandbox: Sandbox, merchant: Merchant, browser: Browser, clock: ManualClock
) -> None:
    merchant.reply = "APPROVED"
    browser.open(payment_fields(sandbox, merchant, oid="ORD-SLOW", session_timeout=60))
    clock.advance(61)
    page = browser.pay()
    values = merchant.callbacks[0].values
    assert values["ErrCode"] == "RULE-0001"
    assert values["ProcReturnCode"] == "99"
    assert 'name="pan"' not in page.text
    assert browser.return_form()[0].endswith("/fail")


def test_session_within_timeout_is_fine(
    sandbox: Sandbox, merchant: Merchant, browser: Browser, clock: ManualClock
) -> None:
    browser.open(payment_fields(sandbox, merchant, session_timeout=60))
    clock.advance(59)
    browser.pay()
    assert merchant.callbacks[0].values["ProcReturnCode"] == "00"


def test_unknown_session_token(sandbox: Sandbox, browser: Browser) -> None:
    page = browser.http.post(
        sandbox.gateway_url + "/pay", data={"session": "nope", "pan": "4111111111111111"}
    )
    assert page.status_code == 400
    assert "CORE-5110" in page.text


def test_callback_response_false_sends_none(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    browser.open(payment_fields(sandbox, merchant, oid="ORD-NOCB", callback_response=False))
    browser.pay()
    assert merchant.callbacks == []
    order = sandbox.order("ORD-NOCB")
    assert order is not None
    assert order.state == "PRE"
    browser.follow_return()
    assert len(merchant.posts("/ok")) == 1


def test_auto_redirect_submits_the_return_form(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    browser.open(payment_fields(sandbox, merchant, auto_redirect=True))
    page = browser.pay().text
    assert 'document.getElementById("return").submit()' in page


def test_without_auto_redirect_a_button_without_name(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    browser.open(payment_fields(sandbox, merchant))
    page = browser.pay().text
    assert ".submit()" not in page
    _, fields, buttons = forms(page)["return"]
    assert buttons
    assert all("name" not in button for button in buttons)
    verify_hash(dict(fields), KEY)
    with pytest.raises(SignatureError):
        verify_hash({**dict(fields), "amount": "1.00"}, KEY)


# Review fixes ------------------------------------------------------------------------------


def test_non_ascii_challenge_code_is_a_wrong_code(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    merchant.reply = lambda r: (
        200,
        "ACTION=POSTAUTH" if r.values["ProcReturnCode"] == "00" else "APPROVED",
    )
    browser.open(payment_fields(sandbox, merchant, oid="ORD-3DS-AR"))
    browser.pay(pan="4000000000003220")
    page = browser.answer_challenge("١٢٣٤٥٦")  # Arabic-Indic digits for 123456
    assert page.status_code == 200
    assert merchant.callbacks[0].values["ErrCode"] == "3D-1005"
    assert 'name="pan"' in page.text  # the card form again: the session is usable
    browser.pay(pan="4000000000003220")
    browser.answer_challenge(CHALLENGE_CODE)
    assert merchant.callbacks[1].values["ProcReturnCode"] == "00"
    order = sandbox.order("ORD-3DS-AR")
    assert order is not None
    assert order.state == "POST"


def test_challenge_state_changes_only_after_the_comparison(
    sandbox: Sandbox, merchant: Merchant, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    import secrets

    browser.open(payment_fields(sandbox, merchant))
    browser.pay(pan="4000000000003220")
    token = dict(forms(browser.page.text)["challenge"][1])["session"]  # type: ignore[union-attr]

    def broken(a: bytes, b: bytes) -> bool:
        raise RuntimeError("comparison failed")

    monkeypatch.setattr(secrets, "compare_digest", broken)
    failed = browser.http.post(
        sandbox.gateway_url + "/3ds", data={"session": token, "otp": CHALLENGE_CODE}, timeout=10
    )
    assert failed.status_code == 500
    assert failed.headers["Connection"] == "close"  # the client must not reuse the socket
    monkeypatch.undo()
    session = sandbox.store.get_session(token)
    assert session is not None
    assert session.state == "challenge"  # not reset to "open" by the failed request
    page = browser.http.post(
        sandbox.gateway_url + "/3ds", data={"session": token, "otp": CHALLENGE_CODE}, timeout=10
    )
    assert page.status_code == 200
    assert merchant.callbacks[0].values["ProcReturnCode"] == "00"


def _sessions_created(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens of the payment sessions created from now on."""
    tokens: list[str] = []
    create = sandbox.store.create_session

    def spy(token: str, **values: Any) -> None:
        tokens.append(token)
        create(token, **values)

    monkeypatch.setattr(sandbox.store, "create_session", spy)
    return tokens


def test_huge_amount_is_an_invalid_field(
    sandbox: Sandbox, merchant: Merchant, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = _sessions_created(sandbox, monkeypatch)
    fields = [(k, "9" * 40 if k == "amount" else v) for k, v in payment_fields(sandbox, merchant)]
    page = browser.open(resign(fields))
    assert page.status_code == 400
    assert "amount" in page.text
    assert 'name="pan"' not in page.text
    assert sessions == []


def test_amount_the_page_cannot_show_is_refused_before_a_session(
    sandbox: Sandbox, merchant: Merchant, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the core accepts, an amount the page fails to format is a 400, no session."""
    from decimal import InvalidOperation

    from cmi_core.sandbox import gateway

    def unformattable(*args: object, **kwargs: object) -> str:
        raise InvalidOperation("quantize result has too many digits for current context")

    sessions = _sessions_created(sandbox, monkeypatch)
    monkeypatch.setattr(gateway, "format_amount", unformattable)
    page = browser.open(payment_fields(sandbox, merchant, oid="ORD-HUGE"))
    assert page.status_code == 400
    assert "amount" in page.text
    assert sessions == []
    assert sandbox.order("ORD-HUGE") is None


@pytest.mark.parametrize(
    ("card", "err_code"),
    [
        (("4111111111111111", "12", "٣٠", "123"), "CORE-2515"),  # Arabic-Indic 30
        (("4111111111111111", "12", "٢٠٣٠", "123"), "CORE-2515"),
        (("4111111111111111", "١٢", "30", "123"), "CORE-2515"),
        (("4111111111111111", "12", "３０", "123"), "CORE-2515"),  # fullwidth
        (("٤١١١١١١١١١١١١١١١", "12", "30", "123"), "CORE-2012"),
        (("4111111111111111", "12", "30", "١٢٣"), "CORE-2515"),
    ],
)
def test_unicode_digits_are_not_card_digits(
    sandbox: Sandbox,
    merchant: Merchant,
    browser: Browser,
    card: tuple[str, str, str, str],
    err_code: str,
) -> None:
    merchant.reply = "APPROVED"
    browser.open(payment_fields(sandbox, merchant))
    pan, month, year, cvv = card
    browser.pay(pan=pan, month=month, year=year, cvv=cvv)
    values = merchant.callbacks[0].values
    assert values["ProcReturnCode"] == "99"
    assert values["ErrCode"] == err_code
    assert values.get("MaskedPan", "") in ("", "411111***1111")


def test_result_carries_the_3ds_and_host_fields_of_the_guide(
    sandbox: Sandbox, merchant: Merchant, browser: Browser
) -> None:
    merchant.reply = "APPROVED"
    browser.open(payment_fields(sandbox, merchant))
    browser.pay()
    browser.open(payment_fields(sandbox, merchant))
    browser.pay(pan="4000000000000515")
    browser.open(payment_fields(sandbox, merchant))
    browser.pay(pan="4000000000000101")
    approved, declined, failed = (c.values for c in merchant.callbacks)
    empty = ("iReqCode", "iReqDetail", "vendorCode", "PResSyntaxOK", "PResVerified")
    for values in (approved, declined, failed):
        verify_hash(values, KEY)
        for name in (*empty, "version", "SID"):
            assert values[name] == "", name  # present, empty as in the §4.2.5 example
    assert approved["EXTRA.HOSTMSG"] == "APPROVED"
    assert approved["SettleId"] == "1"
    assert declined["EXTRA.HOSTMSG"] == "INSUFFICIENT FUNDS"
    assert declined["SettleId"] == ""
    assert failed["EXTRA.HOSTMSG"] == ""  # 3-D Secure failed: the host was never asked
    assert failed["SettleId"] == ""
