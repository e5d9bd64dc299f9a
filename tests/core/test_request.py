"""Building and validating payment requests (guide §4.1.1) and the redirect form."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from html.parser import HTMLParser

import pytest

from cmi_core.config import CMIConfig
from cmi_core.errors import ConfigurationError, ValidationError
from cmi_core.form import render_redirect_form
from cmi_core.hashing import verify_hash
from cmi_core.request import (
    Address,
    LineItem,
    PaymentOrder,
    build_payment_request,
    validate_request,
)

CONFIG = CMIConfig(client_id="600000001", store_key="TEST-KEY")
ORDER = PaymentOrder(
    oid="100042-1",
    amount=Decimal("31.5"),
    email="amina@example.ma",
    billing_name="Amina El Idrissi",
    ok_url="https://shop.example.ma/cmi/ok/",
    fail_url="https://shop.example.ma/cmi/fail/",
    callback_url="https://shop.example.ma/cmi/callback/",
    shop_url="https://shop.example.ma/basket/",
    billing=Address(street1="12 Rue Tarik", city="Casablanca", postal_code="20000", country="504"),
    items=[LineItem(id="sku-1", description="Thé", quantity=3, unit_price=Decimal("10.50"))],
)


def build(**changes: object) -> dict[str, str]:
    return build_payment_request(CONFIG, replace(ORDER, **changes)).as_dict()  # type: ignore[arg-type]


def test_complete_signed_fields() -> None:
    request = build_payment_request(CONFIG, ORDER, rnd="abc123")
    fields = request.as_dict()
    assert request.action == "https://testpayment.cmi.co.ma/fim/est3dgate"
    assert request.fields[-1][0] == "hash"
    assert fields["clientid"] == "600000001"
    assert fields["storetype"] == "3d_pay_hosting"
    assert fields["trantype"] == "PreAuth"
    assert fields["amount"] == "31.50"
    assert fields["currency"] == "504"
    assert fields["hashAlgorithm"] == "ver3"
    assert fields["encoding"] == "utf-8"
    assert fields["lang"] == "fr"
    assert fields["rnd"] == "abc123"
    assert fields["BillToCountry"] == "504"
    assert fields["CallbackURL"] == "https://shop.example.ma/cmi/callback/"
    assert (fields["id1"], fields["qty1"], fields["price1"]) == ("sku-1", "3", "10.50")
    verify_hash(fields, "TEST-KEY")


def test_rnd_is_fresh_for_every_request() -> None:
    assert build()["rnd"] != build()["rnd"]
    assert len(build()["rnd"]) == 20


def test_sandbox_base_url_changes_the_action() -> None:
    config = CMIConfig(client_id="600000001", store_key="K", base_url="http://127.0.0.1:8765/")
    assert build_payment_request(config, ORDER).action == "http://127.0.0.1:8765/fim/est3dgate"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": Decimal("0")}, "amount"),
        ({"amount": Decimal("-1")}, "amount"),
        ({"amount": Decimal("10.005")}, "amount"),
        ({"currency": "999"}, "currency"),
        ({"oid": "x" * 65}, "oid"),
        ({"oid": "order 1"}, "oid"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a" * 60 + "@ex.ma"}, "email"),
        ({"billing_name": "  "}, "BillToName"),
        ({"ok_url": "javascript:alert(1)"}, "okUrl"),
        ({"fail_url": "/relative"}, "failUrl"),
        ({"ok_url": 'http://a"><script>x</script>'}, "okUrl"),
        ({"callback_url": "http://127.0.0.1:1/\x00"}, "CallbackURL"),
        ({"shop_url": "https://shop.ma/a b"}, "shopurl"),
        ({"lang": "de"}, "lang"),
        ({"session_timeout": 29}, "sessiontimeout"),
        ({"session_timeout": 2701}, "sessiontimeout"),
        ({"phone": "call me maybe"}, "tel"),
        ({"billing": Address(country="MA")}, "BillToCountry"),
        ({"billing": Address(postal_code="9" * 33)}, "BillToPostalCode"),
        ({"items": [LineItem(id="x" * 129)]}, "id1"),
        ({"items": [LineItem(id="a", quantity=0)]}, "qty1"),
        ({"amount_cur": Decimal("3.10")}, "symbolCur"),
        ({"amount_cur": Decimal("3.10"), "symbol_cur": "XX"}, "symbolCur"),
        ({"extra": {"amount": "1.00"}}, "amount"),
    ],
)
def test_bad_fields_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        build(**changes)
    assert info.value.field == field
    assert info.value.rule


def test_amount_must_be_decimal() -> None:
    with pytest.raises(ValidationError, match="Decimal"):
        build(amount=31.5)


@pytest.mark.parametrize(("currency", "text"), [("788", "31.500"), ("392", "32"), ("MAD", "31.50")])
def test_amount_formatted_for_the_currency(currency: str, text: str) -> None:
    amount = Decimal("32") if currency == "392" else Decimal("31.5")
    fields = build(currency=currency, amount=amount, items=())
    assert fields["amount"] == text


def test_free_text_is_cut_and_identifiers_are_not() -> None:
    fields = build(
        description="Commande\n" + "é" * 200,
        billing_name="N" * 300,
        items=[LineItem(id="a", description="d" * 300)],
    )
    assert len(fields["description"]) == 125
    assert "\n" not in fields["description"]
    assert len(fields["BillToName"]) == 255
    assert len(fields["desc1"]) == 128


def test_options() -> None:
    fields = build(
        auto_redirect=True,
        currencies_list=False,
        amount_cur=Decimal("2.9"),
        symbol_cur="EUR",
        session_timeout=600,
        callback_response=False,
        lang="ar",
        extra={"ShipToName": "Youssef"},
    )
    assert fields["AutoRedirect"] == "true"
    assert fields["currenciesList"] == "false"
    assert (fields["amountCur"], fields["symbolCur"]) == ("2.90", "EUR")
    assert fields["sessiontimeout"] == "600"
    assert fields["CallbackResponse"] == "false"
    assert fields["lang"] == "ar"
    assert fields["ShipToName"] == "Youssef"


def test_validate_request_matches_names_case_insensitively() -> None:
    fields = build()
    renamed = {("ClientId" if k == "clientid" else k): v for k, v in fields.items()}
    validate_request(renamed, require_hash=True)


@pytest.mark.parametrize(
    "missing", ["clientid", "amount", "oid", "okUrl", "email", "BillToName", "rnd"]
)
def test_validate_request_requires_guide_fields(missing: str) -> None:
    fields = build()
    del fields[missing]
    with pytest.raises(ValidationError) as info:
        validate_request(fields)
    assert info.value.field == missing


def test_validate_request_requires_id_for_each_item_line() -> None:
    fields = {**build(), "qty2": "1"}
    with pytest.raises(ValidationError) as info:
        validate_request(fields)
    assert info.value.field == "id2"


def test_validate_accepts_comma_decimal_separator() -> None:
    validate_request({**build(), "amount": "31,50"})


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []
        self.buttons: list[dict[str, str | None]] = []
        self.forms: list[dict[str, str | None]] = []
        self.meta: list[dict[str, str | None]] = []
        self.html: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        {"input": self.inputs, "button": self.buttons, "form": self.forms, "meta": self.meta}.get(
            tag, []
        ).append(found)
        if tag == "html":
            self.html = found


def test_redirect_form_posts_exactly_the_signed_fields_escaped() -> None:
    request = build_payment_request(
        CONFIG, replace(ORDER, billing_name='Zoé "<script>" & co', lang="ar")
    )
    page = render_redirect_form(request)
    parser = _FormParser()
    parser.feed(page)
    posted = {i["name"]: i["value"] for i in parser.inputs}
    assert posted == request.as_dict()
    assert '<script>"' not in page
    assert all("name" not in b for b in parser.buttons)
    assert len(parser.buttons) == 1
    assert parser.forms[0]["accept-charset"] == "utf-8"
    assert parser.forms[0]["method"] == "post"
    assert parser.forms[0]["action"] == request.action
    assert {"charset": "utf-8"} in parser.meta
    assert parser.html == {"lang": "ar", "dir": "rtl"}
    assert "<noscript>" in page


# -- bad input on the request side (issue #11, item 6) -------------------------------------


@pytest.mark.parametrize("config_timeout", [None, 600])
def test_session_timeout_zero_is_refused_not_taken_for_unset(config_timeout: int | None) -> None:
    config = CMIConfig(client_id="600000001", store_key="K", session_timeout=config_timeout)
    with pytest.raises(ValidationError) as info:
        build_payment_request(config, replace(ORDER, session_timeout=0))
    assert info.value.field == "sessiontimeout"
    assert "between 30 and 2700" in info.value.rule


@pytest.mark.parametrize("value", [True, -30, "600", 600.0])
def test_session_timeout_must_be_whole_seconds(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        build(session_timeout=value)
    assert info.value.field == "sessiontimeout"


def test_session_timeout_zero_in_the_config_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        CMIConfig(client_id="600000001", store_key="K", session_timeout=0)
    assert info.value.setting == "session_timeout"
    assert "30 and 2700" in info.value.rule


def test_session_timeout_none_falls_back_to_the_config() -> None:
    config = CMIConfig(client_id="600000001", store_key="K", session_timeout=600)
    fields = build_payment_request(config, replace(ORDER, session_timeout=None)).as_dict()
    assert fields["sessiontimeout"] == "600"


@pytest.mark.parametrize("lang", ["FR", "Fr", "EN", "AR", "fra", "french"])
def test_lang_must_be_one_of_the_guides_lower_case_values(lang: str) -> None:
    with pytest.raises(ValidationError) as info:
        build(lang=lang)
    assert info.value.field == "lang"
    assert info.value.rule == "one of 'fr', 'en', 'ar', in lower case (guide §4.1.1)"
    fields = build()
    with pytest.raises(ValidationError):  # the emulator answers as CMI would, too
        validate_request({**fields, "lang": lang})


@pytest.mark.parametrize("lang", ["fr", "en", "ar"])
def test_the_guides_languages_are_accepted(lang: str) -> None:
    assert build(lang=lang)["lang"] == lang


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("Response", "results"),
        ("response", "results"),
        ("ProcReturnCode", "results"),
        ("PROCRETURNCODE", "results"),
        ("AuthCode", "results"),
        ("TransId", "results"),
        ("HostRefNum", "results"),
        ("ErrMsg", "results"),
        ("ErrCode", "results"),
        ("mdStatus", "results"),
        ("ReturnOid", "results"),
        ("clientIp", "results"),
        ("MaskedPan", "results"),
        ("EXTRA.CARDBRAND", "results"),
        ("Extra.Anything", "results"),
        ("HASH", "reserved"),
        ("hash", "reserved"),
        ("storeKey", "reserved"),
        ("STOREKEY", "reserved"),
        ("amount", "request fields"),
        ("encoding", "request fields"),
        ("price7", "request fields"),
    ],
)
def test_extra_may_not_take_cmis_names(name: str, rule: str) -> None:
    with pytest.raises(ValidationError) as info:
        build(extra={name: "x"})
    assert info.value.field == name
    assert rule in info.value.rule


@pytest.mark.parametrize("name", ["", "ship to", "a\n", "café", "x" * 65, "a|b", "<b>"])
def test_extra_names_are_letters_digits_and_few_signs(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        build(extra={name: "x"})
    assert info.value.field.startswith("extra[")
    assert "1 to 64 letters, digits, '_', '.' or '-'" in info.value.rule


@pytest.mark.parametrize("value", ["x" * 256, "two\nlines", "nul\x00", 5, None])
def test_extra_values_are_short_text(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        build(extra={"ShipToName": value})
    assert info.value.field == "ShipToName"
    assert "x" * 256 not in str(info.value)  # the value is not repeated


def test_extra_at_its_limits_is_sent_and_signed() -> None:
    name = "A" * 60 + "_.-9"
    fields = build(extra={name: "v" * 255, "ShipToName": "Youssef"})
    assert fields[name] == "v" * 255
    verify_hash(fields, "TEST-KEY")
