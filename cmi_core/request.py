"""The payment request: a platform-neutral order in, CMI's signed form fields out.

Guide §4.1.1 lists the fields, their maximum lengths and formats; §4.1.3 the hash.
:func:`build_payment_request` turns a :class:`PaymentOrder` into the complete, ordered
fields (``hash`` last) and the form's action URL; :func:`validate_request` checks any
field mapping against §4.1.1 (the emulator uses it to answer as CMI would).

Over-long text: identifiers and machine-read values (``oid``, ``email``, ``tel``, URLs,
item ids, numbers and codes, postal code, country) are never altered: a value over its
limit raises :class:`~cmi_core.errors.ValidationError` naming the field. Free text only
shown to people (``description``, ``descN``, ``BillToName``, ``BillToCompany``,
``BillToStreet1/2``, ``BillToCity``, ``BillToStateProv``) has its control characters
turned into spaces and is cut to the guide's length, because refusing a payment over a
long product description helps nobody. The hash is computed over the values sent.

Choices are exact: ``lang`` is ``fr``, ``en`` or ``ar`` as the guide writes them (``FR`` is
refused, not guessed at), and ``sessiontimeout`` is whole seconds from 30 to 2700 (``0`` is
refused, it does not mean "unset": only ``None`` falls back to the configuration).

Merchant ``extra`` fields (our rules, the guide sets none; :func:`check_extra_field`): a
name of 1 to 64 letters, digits, ``_``, ``.`` or ``-`` that is neither a request field of
§4.1.1, nor a result field CMI adds (§4.2.3, :mod:`cmi_core.fields`, ``EXTRA.*``
included), nor ``hash`` or ``storeKey`` (any case); a value of at most 255 characters
without control characters. CMI posts these fields back beside its results, so a merchant
field called ``Response`` or ``ProcReturnCode`` could be mistaken for CMI's answer.

Hash readings (issue #17, docs/core.md): CMI's gateway may hash a value containing
``document`` or an HTML character reference as the guide says or as its PHP kits do.
:func:`_agreeing` is the one step that rewrites values so that every reading gives the
hash sent: free text through :func:`cmi_core.hashing.neutralise`, URLs by
percent-encoding the ``d`` of ``document`` in their path and query; an identifier on
which the readings disagree is refused, never altered.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cmi_core.codes import LANGUAGES
from cmi_core.errors import ValidationError
from cmi_core.fields import RESERVED_FIELDS, is_result_field
from cmi_core.hashing import compute_hash, neutralise, readings_agree
from cmi_core.money import check_amount, format_amount, get_currency, parse_amount

if TYPE_CHECKING:
    from cmi_core.config import CMIConfig

__all__ = [
    "Address",
    "LineItem",
    "PaymentOrder",
    "PaymentRequest",
    "build_payment_request",
    "check_extra_field",
    "new_rnd",
    "strong_rnd",
    "validate_request",
]

STORE_TYPE = "3d_pay_hosting"
TRAN_TYPE = "PreAuth"
HASH_ALGORITHM = "ver3"
ENCODING = "utf-8"
REQUIRED = (
    "clientid",
    "storetype",
    "trantype",
    "amount",
    "currency",
    "oid",
    "okUrl",
    "failUrl",
    "lang",
    "email",
    "BillToName",
    "rnd",
    "hashAlgorithm",
)
#: Free text cut to its length (guide §4.1.1) rather than refused (see the docstring).
#: ``desc`` is the item description ``descN``.
FREE_TEXT = {
    "description": 125,
    "BillToName": 255,
    "BillToCompany": 255,
    "BillToStreet1": 255,
    "BillToStreet2": 255,
    "BillToCity": 64,
    "BillToStateProv": 32,
    "desc": 128,
}
MAX_URL = 2048

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_OID = re.compile(r"^[A-Za-z0-9._-]+$")
_ALNUM = re.compile(r"^[A-Za-z0-9]+$")
_TEL = re.compile(r"^[0-9+() .-]*$")
_NUMERIC = re.compile(r"^[0-9]+$")
_BOOLEAN = ("true", "false")
_ITEM = re.compile(r"^(id|itemnumber|productcode|qty|desc|price|total)([0-9]+)$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
#: Limits on the merchant's ``extra`` fields (our rule; the guide sets none).
MAX_EXTRA_NAME = 64
MAX_EXTRA_VALUE = 255
_EXTRA_NAME = re.compile(rf"[A-Za-z0-9_.-]{{1,{MAX_EXTRA_NAME}}}")


def _max(limit: int) -> Callable[[str, str], None]:
    def check(name: str, value: str) -> None:
        if len(value) > limit:
            raise ValidationError(name, f"at most {limit} characters")

    return check


def _pattern(regex: re.Pattern[str], rule: str) -> Callable[[str, str], None]:
    def check(name: str, value: str) -> None:
        if not regex.match(value):
            raise ValidationError(name, rule)

    return check


def _exactly(*choices: str) -> Callable[[str, str], None]:
    """The value must be one of ``choices`` as written (case included)."""

    def check(name: str, value: str) -> None:
        if value not in choices:
            allowed = ", ".join(repr(c) for c in choices)
            raise ValidationError(name, f"one of {allowed}, in lower case (guide §4.1.1)")

    return check


def _one_of(*choices: str) -> Callable[[str, str], None]:
    def check(name: str, value: str) -> None:
        if value.lower() not in choices:
            raise ValidationError(name, "one of " + ", ".join(repr(c) for c in choices))

    return check


_URL = re.compile(r"^https?://[^\s/\"'<>\\]+[^\s\"'<>\\]*$")


def _url(name: str, value: str) -> None:
    if not _URL.match(value) or _CONTROL.search(value) or len(value) > MAX_URL:
        raise ValidationError(name, f"an absolute http(s) URL of at most {MAX_URL} characters")


def _amount(name: str, value: str) -> None:
    if parse_amount(value, name) <= 0:
        raise ValidationError(name, "must be greater than zero")


def _quantity(name: str, value: str) -> None:
    if parse_amount(value, name) <= 0:
        raise ValidationError(name, "a positive number")


def _currency(name: str, value: str) -> None:
    if not _NUMERIC.match(value) or len(value) != 3:
        raise ValidationError(name, "the numeric ISO 4217 code, e.g. 504 for MAD")
    get_currency(value)


def _session_timeout(name: str, value: str) -> None:
    if not _NUMERIC.match(value) or not 30 <= int(value) <= 2700:
        raise ValidationError(name, "whole seconds between 30 and 2700")


def _all(*checks: Callable[[str, str], None]) -> Callable[[str, str], None]:
    def check(name: str, value: str) -> None:
        for one in checks:
            one(name, value)

    return check


#: Guide §4.1.1, field by field (names compared without regard to case).
RULES: dict[str, Callable[[str, str], None]] = {
    "clientid": _all(_max(15), _pattern(_ALNUM, "letters and digits only")),
    "storetype": _one_of(STORE_TYPE),
    "trantype": _one_of(TRAN_TYPE.lower()),
    "amount": _amount,
    "currency": _currency,
    "oid": _all(_max(64), _pattern(_OID, "letters, digits, '.', '_' and '-' only")),
    "okurl": _url,
    "failurl": _url,
    "callbackurl": _url,
    "shopurl": _url,
    "lang": _exactly(*LANGUAGES),
    "email": _all(_max(64), _pattern(_EMAIL, "an e-mail address")),
    "billtoname": _max(FREE_TEXT["BillToName"]),
    "rnd": _all(_max(20), _pattern(_ALNUM, "letters and digits only")),
    "hashalgorithm": _one_of(HASH_ALGORITHM),
    "encoding": _all(_max(32), _one_of(ENCODING)),
    "description": _max(FREE_TEXT["description"]),
    "tel": _all(_max(32), _pattern(_TEL, "digits, spaces and + ( ) . - only")),
    "billtocompany": _max(FREE_TEXT["BillToCompany"]),
    "billtostreet1": _max(FREE_TEXT["BillToStreet1"]),
    "billtostreet2": _max(FREE_TEXT["BillToStreet2"]),
    "billtocity": _max(FREE_TEXT["BillToCity"]),
    "billtostateprov": _max(FREE_TEXT["BillToStateProv"]),
    "billtopostalcode": _max(32),
    "billtocountry": _all(_max(3), _pattern(_NUMERIC, "the numeric ISO 3166 code, e.g. 504")),
    "callbackresponse": _one_of(*_BOOLEAN),
    "currencieslist": _one_of(*_BOOLEAN),
    "autoredirect": _one_of(*_BOOLEAN),
    "amountcur": _amount,
    "symbolcur": _all(_max(10), _pattern(_ALNUM, "a currency symbol such as EUR")),
    "sessiontimeout": _session_timeout,
}
ITEM_RULES: dict[str, Callable[[str, str], None]] = {
    "id": _max(128),
    "itemnumber": _max(128),
    "productcode": _max(64),
    "qty": _quantity,
    "desc": _max(FREE_TEXT["desc"]),
    "price": _amount,
    "total": _amount,
}


def check_extra_field(name: object, value: object) -> None:
    """Check one merchant field of :attr:`PaymentOrder.extra` (our rules; see the docstring).

    The name: 1 to :data:`MAX_EXTRA_NAME` letters, digits, ``_``, ``.`` or ``-``; not a
    request field of guide §4.1.1 (nor an item field ``idN``...), not a result field of
    §4.2.3 (:func:`cmi_core.fields.is_result_field`, ``EXTRA.*`` included), not ``hash``
    nor ``storeKey``, in any case. The value: text of at most :data:`MAX_EXTRA_VALUE`
    characters without control characters. Raises :class:`ValidationError` naming the
    field (the value is never repeated).
    """
    if not isinstance(name, str) or not _EXTRA_NAME.fullmatch(name):
        shown = name[:MAX_EXTRA_NAME] if isinstance(name, str) else type(name).__name__
        raise ValidationError(
            f"extra[{shown!r}]",
            f"an extra field name is 1 to {MAX_EXTRA_NAME} letters, digits, '_', '.' or '-'",
        )
    lowered = name.lower()
    if lowered in RULES or _ITEM.match(name):
        raise ValidationError(name, "extra fields may not replace CMI's own request fields")
    if lowered in RESERVED_FIELDS:
        raise ValidationError(name, "reserved: extra fields may not be called hash or storeKey")
    if is_result_field(name):
        raise ValidationError(
            name, "extra fields may not take a name CMI uses for its results (guide §4.2.3)"
        )
    if not isinstance(value, str):
        raise ValidationError(name, "an extra field's value is text")
    if len(value) > MAX_EXTRA_VALUE or _CONTROL.search(value):
        raise ValidationError(
            name, f"at most {MAX_EXTRA_VALUE} characters, without control characters"
        )


def validate_request(fields: Mapping[str, str], *, require_hash: bool = False) -> None:
    """Check payment-request fields against guide §4.1.1; raise on the first broken rule.

    Names are matched without regard to case, as CMI does. Checks: required fields present
    and not empty, each field's length and format, the amount's decimals against the
    currency, and item lines (``idN`` present for every line ``N`` that has fields).
    Unknown fields are allowed: CMI returns them in the callback.
    """
    by_name = {name.lower(): (name, value) for name, value in fields.items()}
    required = [*REQUIRED, "hash"] if require_hash else list(REQUIRED)
    for name in required:
        if not by_name.get(name.lower(), ("", ""))[1].strip():
            raise ValidationError(name, "required (guide §4.1.1)")
    item_numbers: set[str] = set()
    for lowered, (name, raw) in by_name.items():
        value = raw.strip()
        rule = RULES.get(lowered)
        if rule is not None:
            if value or lowered in ("email", "billtoname"):
                rule(name, value)
            continue
        match = _ITEM.match(name)
        if match:
            item_numbers.add(match.group(2))
            if value:
                ITEM_RULES[match.group(1).lower()](name, value)
    currency = get_currency(by_name["currency"][1].strip())
    check_amount(parse_amount(by_name["amount"][1]), currency)
    for number in item_numbers:
        if not by_name.get(f"id{number}", ("", ""))[1].strip():
            raise ValidationError(f"id{number}", f"required for item line {number}")


@dataclass(frozen=True, kw_only=True, slots=True)
class Address:
    """The shopper's billing address (guide §4.1.1, ``BillTo*``). Country is numeric ISO."""

    street1: str = ""
    street2: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""
    company: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class LineItem:
    """One item line (``idN``, ``itemnumberN``, ``productcodeN``, ``qtyN``, ``descN``...)."""

    id: str
    description: str = ""
    quantity: int | Decimal = 1
    unit_price: Decimal | None = None
    total: Decimal | None = None
    item_number: str = ""
    product_code: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class PaymentOrder:
    """What a platform knows of the payment, in the platform's neutral terms.

    ``currency`` and ``lang`` default to the configuration's; ``callback_url`` should
    always be set (the guide recommends updating orders from the callback, §4.1.1);
    ``extra`` holds further merchant fields, which CMI sends back in the callback.
    """

    oid: str
    amount: Decimal
    email: str
    billing_name: str
    ok_url: str
    fail_url: str
    callback_url: str | None = None
    shop_url: str | None = None
    currency: str | None = None
    lang: str | None = None
    phone: str = ""
    billing: Address | None = None
    items: Sequence[LineItem] = ()
    description: str = ""
    auto_redirect: bool | None = None
    currencies_list: bool | None = None
    amount_cur: Decimal | None = None
    symbol_cur: str | None = None
    session_timeout: int | None = None
    callback_response: bool = True
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """The signed form: where to post it, and its fields in order (``hash`` last)."""

    action: str
    fields: tuple[tuple[str, str], ...]

    def as_dict(self) -> dict[str, str]:
        return dict(self.fields)

    @property
    def oid(self) -> str:
        return self.as_dict()["oid"]


_LOWER = re.compile(r"[a-z]")
_DIGIT = re.compile(r"[0-9]")


def strong_rnd(rnd: str) -> bool:
    """True when ``rnd`` has the shape the binding's proof needs: a small letter and a digit.

    :mod:`cmi_core.binding` relies on it (guide §4.2.3: no result field can carry such a
    value); it lives here, beside :func:`new_rnd`, because the binding reads this module's
    field names.
    """
    return bool(_LOWER.search(rnd) and _DIGIT.search(rnd))


def new_rnd() -> str:
    """A fresh 20-character random value for ``rnd`` (never reused, guide §4.1.1).

    It always holds a small letter and a digit: the callback binding's proof relies on
    no result field of CMI's being able to carry such a value (:mod:`cmi_core.binding`).
    """
    alphabet = string.ascii_letters + string.digits
    while True:
        rnd = "".join(secrets.choice(alphabet) for _ in range(20))
        if strong_rnd(rnd):
            return rnd


def _free_text(name: str, value: str) -> str:
    return _CONTROL.sub(" ", value).strip()[: FREE_TEXT[name]].rstrip()


def _boolean(value: bool) -> str:
    return "true" if value else "false"


_FREE_TEXT_NAMES = frozenset(name.lower() for name in FREE_TEXT if name != "desc")
_ITEM_DESC = re.compile(r"^desc[0-9]+$", re.IGNORECASE)
_URL_NAMES = frozenset({"okurl", "failurl", "callbackurl", "shopurl"})
_DOCUMENT = re.compile("document", re.IGNORECASE)
_DISAGREE = (
    "CMI's gateway may hash this value two ways (guide §4.1.3 read literally or as its PHP "
    "kits do): write 'document' in lower case and follow it with an ASCII character, and "
    "avoid HTML character references such as &amp;"
)


def _url_agreeing(value: str) -> str:
    """A URL naming the same resource on which every hash reading agrees: the ``d`` of
    ``document`` percent-encoded after the host (``/Documents/`` -> ``/%44ocuments/``,
    decoded back by any web framework), the host (case-insensitive) in lower case."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return value  # validate_request refuses it
    prefix = f"{parts.scheme}://{parts.netloc}"
    if not value.startswith(prefix):
        return value
    netloc = parts.netloc.lower() if "@" not in parts.netloc else parts.netloc
    rest = _DOCUMENT.sub(lambda m: f"%{ord(m[0][0]):02X}{m[0][1:]}", value[len(prefix) :])
    return f"{parts.scheme}://{netloc}{rest}"


def _agreeing(name: str, value: str) -> str:
    """The value sent for ``name``: one on which every hash reading agrees, if it can be.

    Free text (shown to people) goes through :func:`~cmi_core.hashing.neutralise`; URLs
    through :func:`_url_agreeing`; an e-mail address may be lowered; anything else is left
    as it is (``build_payment_request`` refuses it if the readings still disagree).
    """
    if readings_agree(value):
        return value
    lowered = name.lower()
    if lowered in _FREE_TEXT_NAMES or _ITEM_DESC.match(name):
        return neutralise(value)
    if lowered in _URL_NAMES:
        return _url_agreeing(value)
    if lowered == "email" and neutralise(value).lower() == value.lower():
        return neutralise(value)
    return value


def build_payment_request(
    config: CMIConfig, order: PaymentOrder, *, rnd: str | None = None
) -> PaymentRequest:
    """Build CMI's complete, validated and signed payment form (guide §4.1).

    Every value sent hashes the same under every reading of §4.1.3 (:func:`_agreeing`), so
    the ``hash`` is right whichever way CMI's gateway reads the guide. Raises
    :class:`~cmi_core.errors.ValidationError` naming the field and the rule.
    """
    currency = get_currency(order.currency or config.currency)
    lang = order.lang or config.lang
    fields: dict[str, str] = {
        "clientid": config.client_id,
        "storetype": STORE_TYPE,
        "trantype": TRAN_TYPE,
        "amount": format_amount(order.amount, currency),
        "currency": currency.numeric,
        "oid": order.oid.strip(),
        "okUrl": order.ok_url,
        "failUrl": order.fail_url,
        "lang": lang,
        "email": order.email.strip(),
        "BillToName": _free_text("BillToName", order.billing_name),
    }
    optional: dict[str, str | None] = {
        "CallbackURL": order.callback_url,
        "shopurl": order.shop_url,
        "tel": order.phone.strip() or None,
        "description": _free_text("description", order.description) or None,
    }
    if not order.callback_response:
        optional["CallbackResponse"] = "false"
    if order.billing is not None:
        address = order.billing
        for name, value in (
            ("BillToCompany", address.company),
            ("BillToStreet1", address.street1),
            ("BillToStreet2", address.street2),
            ("BillToCity", address.city),
            ("BillToStateProv", address.state),
            ("BillToPostalCode", address.postal_code.strip()),
            ("BillToCountry", address.country.strip()),
        ):
            optional[name] = (_free_text(name, value) if name in FREE_TEXT else value) or None
    for number, item in enumerate(order.items, start=1):
        optional[f"id{number}"] = item.id.strip()
        optional[f"itemnumber{number}"] = item.item_number.strip() or None
        optional[f"productcode{number}"] = item.product_code.strip() or None
        optional[f"qty{number}"] = str(item.quantity)
        optional[f"desc{number}"] = _free_text("desc", item.description) or None
        if item.unit_price is not None:
            optional[f"price{number}"] = format_amount(item.unit_price, currency, f"price{number}")
        if item.total is not None:
            optional[f"total{number}"] = format_amount(item.total, currency, f"total{number}")
    if order.currencies_list is not None:
        optional["currenciesList"] = _boolean(order.currencies_list)
    if order.amount_cur is not None:
        if not order.symbol_cur:
            raise ValidationError("symbolCur", "required with amountCur")
        try:
            symbol = get_currency(order.symbol_cur)
        except ValidationError as exc:
            raise ValidationError("symbolCur", "an ISO 4217 currency such as EUR") from exc
        optional["amountCur"] = format_amount(order.amount_cur, symbol, "amountCur")
        optional["symbolCur"] = order.symbol_cur
    if order.auto_redirect is not None:
        optional["AutoRedirect"] = _boolean(order.auto_redirect)
    # 0 is a value (refused by the rule), not "unset": only None falls back to the config.
    timeout = order.session_timeout if order.session_timeout is not None else config.session_timeout
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int):
            raise ValidationError("sessiontimeout", "whole seconds between 30 and 2700")
        optional["sessiontimeout"] = str(timeout)
    for name, value in order.extra.items():
        check_extra_field(name, value)
        optional[name] = value
    fields.update({name: value for name, value in optional.items() if value is not None})
    fields["rnd"] = rnd if rnd is not None else new_rnd()
    fields["hashAlgorithm"] = HASH_ALGORITHM
    fields["encoding"] = ENCODING
    fields = {name: _agreeing(name, value) for name, value in fields.items()}
    validate_request(fields)
    for name, value in fields.items():
        if not readings_agree(value):
            raise ValidationError(name, _DISAGREE)
    fields["hash"] = compute_hash(fields, config.store_key)
    return PaymentRequest(action=config.gateway_url, fields=tuple(fields.items()))
