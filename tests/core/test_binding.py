"""The callback binding (cmi_core.binding): a result proves its whole payment.

The attacker of issue 11: pay a cheap order Y whose address fields hold the values of an
expensive, unpaid order X, then rename the fields of Y's genuine signed result so that
``oid``, ``amount``... name them, keeping the order of the values (the hash signs values,
not names). :func:`strict_forgery` searches *every* renaming, added and dropped name the
binding could let through (a dynamic programme over the sorted candidate names), and the
property tests assert that none is ever strict for X.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from cmi_core.binding import (
    CMI_RESULT_FIELDS,
    MERCHANT_FIELDS,
    Binding,
    BindingError,
    bind,
)
from cmi_core.callback import KnownPayment, Outcome, decide_callback, verify_callback
from cmi_core.config import CMIConfig
from cmi_core.errors import ValidationError
from cmi_core.hashing import EXCLUDED_FIELDS, PHP_TRIM, natcase_sorted, verify_hash
from cmi_core.request import Address, LineItem, PaymentOrder, build_payment_request
from cmi_core.sandbox.cards import CardCheck, CardEntry
from cmi_core.sandbox.cards import Outcome as CardOutcome
from cmi_core.sandbox.results import new_ids, result_fields
from cmi_core.states import PaymentStatus
from cmi_core.testing import sign

KEY = "TEST-STORE-KEY"
CONFIG = CMIConfig(client_id="600000000", store_key=KEY)
APPROVED = CardOutcome("Approved", "00", md_status="1")
DECLINED = CardOutcome("Declined", "05", err_code="", md_status="1")
NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)

#: What a shopper types as free text (the e-mail and phone are checked for their shape).
FREE_SLOTS = ("billing_name", "company", "street1", "street2", "city", "state", "postal_code",
              "description")  # fmt: skip


def build(
    oid: str,
    amount: str,
    shopper: Mapping[str, str],
    items: int = 0,
    *,
    per_oid_urls: bool = True,
) -> dict[str, str]:
    """A signed request as a shop builds it; ``shopper`` fills what the shopper types."""
    suffix = f"/{oid}" if per_oid_urls else ""
    order = PaymentOrder(
        oid=oid,
        amount=Decimal(amount),
        email=shopper.get("email") or "shopper@example.ma",
        billing_name=shopper.get("billing_name") or "Shopper",
        phone=shopper.get("phone", ""),
        ok_url=f"https://shop.example/cmi/ok{suffix}",
        fail_url=f"https://shop.example/cmi/fail{suffix}",
        callback_url="https://shop.example/cmi/callback",
        description=shopper.get("description", ""),
        billing=Address(
            company=shopper.get("company", ""),
            street1=shopper.get("street1", ""),
            street2=shopper.get("street2", ""),
            city=shopper.get("city", ""),
            state=shopper.get("state", ""),
            postal_code=shopper.get("postal_code", ""),
            country="504",
        ),
        items=[LineItem(id=f"sku{n}", description="Porte-documents") for n in range(items)],
    )
    return build_payment_request(CONFIG, order).as_dict()


def genuine_result(
    request: Mapping[str, str], outcome: CardOutcome = APPROVED, holder: str = "Bill Doe"
) -> dict[str, str]:
    """The signed result the emulator (CMI's stand-in) posts for ``request``."""
    check = CardCheck(None, None, "VISA", "CDM", "400000******7190")
    entry = CardEntry(pan="4000000000007190", month="12", year="2030", cvv="123", holder=holder)
    fields = result_fields(
        list(request.items()),
        outcome,
        ids=new_ids(NOW),
        now=NOW,
        client_ip="81.192.141.16",
        client_id=request["clientid"],
        check=check,
        entry=entry,
    )
    return sign(dict(fields), KEY)


# -- the attacker's search ------------------------------------------------------------------


def _trim(value: str) -> str:
    return value.strip(PHP_TRIM)


def _hashed_values(fields: Mapping[str, str]) -> list[str]:
    names = [n for n in natcase_sorted(fields) if n.lower() not in EXCLUDED_FIELDS]
    return [fields[n] for n in names]


def search(
    genuine: Mapping[str, str],
    required: Mapping[str, str],
    names: Sequence[str],
    fits_other: Callable[[str, str], bool],
) -> list[str] | None:
    """Names, one per hashed value of ``genuine`` in its hashed order (so the hash of the
    renamed message verifies), drawn in sorted order from ``names``, such that every name
    of ``required`` is used with its value and every other name chosen accepts its value
    (``fits_other(value, name)``); None when no renaming does. A dynamic programme over
    (position, candidate): it finds a renaming whenever one exists.
    """
    values = [_trim(v) for v in _hashed_values(genuine)]
    ordered = natcase_sorted(set(names) | set(required))

    def fits(value: str, name: str) -> bool:
        if name in required:
            if name == "storetype":
                return value.replace("_", " ").upper() == required[name].replace("_", " ").upper()
            return value == required[name]
        return fits_other(value, name)

    reach: list[list[int | None]] = []  # reach[i][j]: the predecessor (-1 for none)
    for i, value in enumerate(values):
        row: list[int | None] = [None] * len(ordered)
        best: int | None = -1 if i == 0 else None  # a predecessor skipping no required name
        for j, name in enumerate(ordered):
            if best is not None and fits(value, name):
                row[j] = best
            if i and reach[i - 1][j] is not None:
                best = j
            elif name in required:
                best = None
        reach.append(row)
    last = len(values) - 1
    for j in range(len(ordered) - 1, -1, -1):
        if reach[last][j] is not None:
            chosen, position = [], j
            for i in range(last, -1, -1):
                chosen.append(ordered[position])
                position = reach[i][position]  # type: ignore[assignment]
            return list(reversed(chosen))
        if ordered[j] in required:
            return None
    return None


_ITEMS = [f"{kind}{n}" for kind in ("id", "itemnumber", "productcode", "qty", "desc", "price",
          "total") for n in range(1, 6)]  # fmt: skip


def strict_forgery(genuine: Mapping[str, str], target: Mapping[str, str]) -> list[str] | None:
    """A renaming of ``genuine`` that :func:`bind` would find STRICT for the request
    ``target``, or None. Every request field of ``target`` takes its value; each other
    name is one the binding knows: a result field whose strict shape the value fits, or
    a merchant or item field with an empty value (unknown names are refused outright).
    """
    required = {n.lower(): _trim(v) for n, v in target.items() if n.lower() not in EXCLUDED_FIELDS}

    def fits_other(value: str, name: str) -> bool:
        if name == "returnoid":
            return value in ("", required["oid"])
        if name == "merchantid":
            return value in ("", required["clientid"])
        if name in CMI_RESULT_FIELDS:
            shape = CMI_RESULT_FIELDS[name]
            return bind_free_text(value) if shape is None else bool(shape.match(value))
        return value == ""

    names = [*CMI_RESULT_FIELDS, *MERCHANT_FIELDS, *_ITEMS]
    return search(genuine, required, names, fits_other)


def bind_free_text(value: str) -> bool:
    from cmi_core.binding import _FREE_TEXT

    return bool(_FREE_TEXT.match(value))


def forged_fields(genuine: Mapping[str, str], names: Sequence[str]) -> dict[str, str]:
    forged = dict(zip(names, _hashed_values(genuine), strict=True))
    forged["HASH"] = genuine["HASH"]
    return forged


# -- the issue's attack, step by step -------------------------------------------------------


def test_the_renaming_attack_of_issue_11_verifies_the_hash_but_is_refused() -> None:
    expensive = build("cmi-100000000001", "4999.00", {"street1": "Rue A", "city": "Rabat"})
    cheap = build(
        "cmi-100000000002",
        "10.00",
        {"city": "4999.00", "description": "cmi-100000000001"},
    )
    genuine = genuine_result(cheap)
    # Hash only (what the project did before): amount, currency and oid renamed onto the
    # city, BillToCountry and description, filler names keep the values' order (and take
    # Y's own oid, amount, ReturnOid...); the result verifies and reads as X's approval.
    fillers = [f"{letters}{n}" for letters in ("a", "aa", "b", "c", "m", "p", "x", "z")
               for n in range(1, 40)]  # fmt: skip
    pinned = {"oid": "cmi-100000000001", "amount": "4999.00", "ProcReturnCode": "00",
              "Response": "Approved", "currency": "504"}  # fmt: skip
    names = search(genuine, pinned, fillers, lambda value, name: True)
    assert names is not None
    forged = forged_fields(genuine, names)
    verify_hash(forged, KEY)
    unbound = verify_callback(forged, KEY)
    assert (unbound.oid, unbound.amount, unbound.approved) == (
        "cmi-100000000001",
        Decimal("4999.00"),
        True,
    )
    assert decide_callback(unbound, _known(expensive)).outcome is Outcome.UNCONFIRMED
    # Bound to X's request: refused; and no renaming at all binds strictly to X.
    with pytest.raises(BindingError):
        verify_callback(forged, KEY, expected=expensive)
    assert strict_forgery(genuine, expensive) is None


def test_a_genuine_result_binds_strictly_to_its_own_request() -> None:
    request = build("cmi-100000000003", "249.00", {"street1": "12 Rue Idriss", "items": ""})
    result = verify_callback(genuine_result(request), KEY, expected=request)
    assert result.binding is Binding.STRICT
    assert result.approved
    declined = verify_callback(genuine_result(request, DECLINED), KEY, expected=request)
    assert declined.binding is Binding.STRICT
    assert not declined.approved


def test_the_search_finds_the_genuine_naming_of_a_result_for_its_own_request() -> None:
    request = build("cmi-100000000004", "120.00", {"city": "Fès"}, items=2)
    genuine = genuine_result(request)
    names = strict_forgery(genuine, request)  # the search is not vacuous
    assert names is not None
    forged = forged_fields(genuine, names)
    verify_hash(forged, KEY)
    assert bind(forged, request)[0] is Binding.STRICT


# -- the property: no strict forgery, whatever the shopper typed ----------------------------

_text = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "Zs", "P")), max_size=30
)


#: Free-text slots of at least 64 characters (a URL fits) and the short ones (32).
_LONG_SLOTS = ("billing_name", "company", "street1", "street2", "city", "description")
_SHORT_SLOTS = ("state", "postal_code")


@st.composite
def attack(draw: st.DrawFn) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Two payments, the victim X and the attacker's paid Y, built one after the other.

    The later one's shopper fields carry every value of the earlier one that could be
    needed to impersonate it (its oid, amount, rnd and URLs), each in a slot the attacker
    picks, plus free text; the card holder name typed on CMI's page is the attacker's too.
    """
    x_first = draw(st.booleans())
    per_oid_urls = draw(st.booleans())
    first_oid, later_oid = "cmi-200000000001", "cmi-200000000002"
    first_amount, later_amount = draw(st.sampled_from([("4999.00", "10.00"), ("10.00", "4999.00")]))
    first_shopper = {slot: draw(_text) for slot in draw(st.sets(st.sampled_from(FREE_SLOTS)))}
    try:
        first = build(first_oid, first_amount, first_shopper, per_oid_urls=per_oid_urls)
    except ValidationError:  # e.g. a blank name: the shop refuses it before any payment
        reject()
    wanted = [first["oid"], first["amount"], first["rnd"], first["oid"]]
    if per_oid_urls:
        wanted += [first["okUrl"], first["failUrl"]]
    slots = draw(st.permutations(_LONG_SLOTS))
    later_shopper = dict(zip(slots, wanted, strict=False))
    for slot in (*slots[len(wanted) :], *_SHORT_SLOTS):
        if draw(st.booleans()):
            later_shopper[slot] = draw(st.sampled_from([first_amount, first["rnd"]]) | _text)
    try:
        later = build(later_oid, later_amount, later_shopper, per_oid_urls=per_oid_urls)
    except ValidationError:  # e.g. a long text typed as a postal code: the shop refuses it
        reject()
    victim, paid = (first, later) if x_first else (later, first)
    holder = draw(st.sampled_from(["Bill Doe", victim["oid"], victim["rnd"], victim["amount"]]))
    outcome = draw(st.sampled_from([APPROVED, DECLINED]))
    return victim, paid, genuine_result(paid, outcome, holder=holder)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attack())
def test_no_renaming_of_a_genuine_result_binds_strictly_to_another_payment(
    case: tuple[dict[str, str], dict[str, str], dict[str, str]],
) -> None:
    victim, _paid, genuine = case
    names = strict_forgery(genuine, victim)
    assert names is None, names


@settings(max_examples=200, deadline=None)
@given(attack(), st.data())
def test_random_renamings_are_never_accepted_for_another_payment(
    case: tuple[dict[str, str], dict[str, str], dict[str, str]], data: st.DataObject
) -> None:
    """Renamings that keep the hash (each value under a sorted choice of names CMI may send,
    unknown names included): each is refused or loose, never strict, for the victim."""
    victim, _paid, genuine = case
    values = _hashed_values(genuine)
    pool = sorted({*victim, *(n for n in genuine if n != "HASH"), *CMI_RESULT_FIELDS, "aa1", "b2"})
    chosen = data.draw(st.lists(st.sampled_from(pool), min_size=len(values),
                                max_size=len(values), unique_by=str.lower))  # fmt: skip
    forged = {**dict(zip(natcase_sorted(chosen), values, strict=True)), "HASH": genuine["HASH"]}
    try:
        verify_hash(forged, KEY)
    except Exception:  # noqa: BLE001 - ties among names reorder values: not a valid forgery
        return
    try:
        result = verify_callback(forged, KEY, expected=victim)
    except Exception:  # noqa: BLE001 - refused: BindingError, or unreadable amount
        return
    assert result.binding is not Binding.STRICT


# -- what decides once the binding is loose ----------------------------------------------------


def _known(request: Mapping[str, str]) -> KnownPayment:
    amount = Decimal(request["amount"])
    return KnownPayment(
        oid=request["oid"],
        amount=amount,
        currency="504",
        status=PaymentStatus.new(amount),
        capture_mode="auto",
    )


def test_a_loose_approval_needs_cmis_confirmation() -> None:
    request = build("cmi-300000000001", "99.00", {})
    fields = sign({**genuine_result(request), "DIMCRITERIA1": "cmi-300000000009"}, KEY)
    result = verify_callback(fields, KEY, expected=request)
    assert result.binding is Binding.LOOSE
    assert "dimcriteria1" in result.binding_note
    refused = decide_callback(result, _known(request))
    assert (refused.body, refused.outcome, refused.events) == ("FAILURE", Outcome.UNCONFIRMED, ())
    confirmed = decide_callback(result, _known(request), confirmed=True)
    assert confirmed.outcome is Outcome.CAPTURE


def test_a_loose_decline_is_refused_even_confirmed() -> None:
    request = build("cmi-300000000002", "99.00", {})
    fields = sign({**genuine_result(request, DECLINED), "ErrMsg": "see 12345"}, KEY)
    result = verify_callback(fields, KEY, expected=request)
    assert result.binding is Binding.LOOSE
    decision = decide_callback(result, _known(request), confirmed=True)
    assert (decision.body, decision.events) == ("FAILURE", ())


def test_an_unbound_approval_is_refused_unless_confirmed() -> None:
    request = build("cmi-300000000003", "99.00", {})
    result = verify_callback(genuine_result(request), KEY)
    assert result.binding is Binding.NONE
    assert decide_callback(result, _known(request)).outcome is Outcome.UNCONFIRMED
    assert decide_callback(result, _known(request), confirmed=True).outcome is Outcome.CAPTURE


# -- the hard rules, one by one ---------------------------------------------------------------


def _bound(request: Mapping[str, str], **changes: str) -> tuple[Binding, str]:
    fields = {**genuine_result(request), **changes}
    return bind(fields, request)


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"oid": "cmi-999999999999"}, "'oid' came back changed"),
        ({"amount": "1.00"}, "'amount' came back changed"),
        ({"rnd": "x"}, "'rnd' came back changed"),
        ({"okUrl": "https://evil.example/ok"}, "'okurl' came back changed"),
        ({"BillToStreet1": "Elsewhere"}, "'billtostreet1' came back changed"),
        ({"ReturnOid": "cmi-999999999999"}, "ReturnOid differs"),
        ({"merchantID": "999999999"}, "merchantID differs"),
        ({"aa1": "x"}, "not one CMI sends"),
        ({"OID": "cmi-400000000001"}, "twice under two spellings"),
        ({"ErrMsg": "x" * 3000}, "longer than"),
    ],
)
def test_hard_rules_refuse(change: dict[str, str], rule: str) -> None:
    request = build("cmi-400000000001", "50.00", {"street1": "1 Rue"})
    with pytest.raises(BindingError, match=rule.replace("(", r"\(")):
        _bound(request, **change)


def test_a_missing_request_field_is_refused() -> None:
    request = build("cmi-400000000002", "50.00", {"street1": "1 Rue"})
    fields = genuine_result(request)
    del fields["BillToStreet1"]
    with pytest.raises(BindingError, match="'billtostreet1' is missing"):
        bind(fields, request)


def test_names_compare_without_case_and_storetype_as_cmi_rewrites_it() -> None:
    request = build("cmi-400000000003", "50.00", {})
    fields = genuine_result(request)
    fields["callbackUrl"] = fields.pop("CallbackURL")
    fields["storetype"] = "3D PAY HOSTING"
    assert bind(fields, request) == (Binding.STRICT, "")
    fields["storetype"] = "3D PAY"
    with pytest.raises(BindingError, match="storetype"):
        bind(fields, request)


def test_a_weak_rnd_cannot_be_strict() -> None:
    request = build_payment_request(
        CONFIG,
        PaymentOrder(
            oid="cmi-400000000004",
            amount=Decimal(5),
            email="a@b.ma",
            billing_name="A",
            ok_url="https://s.example/ok",
            fail_url="https://s.example/fail",
        ),
        rnd="ONLYCAPITALSANDNONE",
    ).as_dict()
    binding, note = bind(genuine_result(request), request)
    assert binding is Binding.LOOSE
    assert "rnd" in note


# -- what a real CMI sends: both §4.2.5 examples -----------------------------------------------

# Guide §4.2.5 "Cas de transaction réussie", every field, as printed.
GUIDE_SUCCESS = {
    "ACQBIN": "439218", "acqStan": "56928", "amount": "27.47", "AuthCode": "746579",
    "Bill2Email": "test@cmi.co.ma", "BillToCity": "Casablanca", "BillToCompany":
    "Billing Company", "BillToCountry": "504", "BillToName": "Bill John Doe",
    "BillToPostalCode": "12345", "BillToStateProv": "mystate", "BillToStreet1":
    "Address line 1", "BillToStreet2": "Address line 2", "BillToStreet3": "Address line 3",
    "BillToTelVoice": "123456", "CallbackResponse": "", "callbackUrl":
    "http://test.cmi.co.ma/callback", "cardHolderName": "Cardholder name", "cavv":
    "AAABCRA0I1WFQDgnWDSXAAAAAAA=", "cavvAlgorithm": "", "choix1": "on", "clientid":
    "6000000004", "clientIp": "81.192.141.16", "currency": "504", "CUSTOMERSISDN": "",
    "CUSTOMERSURCHARGE": "", "CVVPresence": "1", "desc1": "desc1", "desc2": "desc2",
    "desc3": "desc3", "digest": "digest", "DIMCRITERIA1": "", "DIMCRITERIA10": "",
    "DIMCRITERIA2": "", "DIMCRITERIA3": "", "DIMCRITERIA4": "", "DIMCRITERIA5": "",
    "DIMCRITERIA6": "", "DIMCRITERIA7": "", "DIMCRITERIA8": "", "DIMCRITERIA9": "",
    "dsId": "1", "eci": "5", "Ecom_Payment_Card_ExpDate_Month": "12",
    "Ecom_Payment_Card_ExpDate_Year": "17", "EDITABLEORDERITEM": "", "ErrMsg": "",
    "EXCHANGEAMOUNT": "@@EXCHANGEAMOUNT@@", "EXCHANGECURRENCY": "", "EXTRA.CARDBRAND": "VISA",
    "EXTRA.CARDISSUER": "CDM", "EXTRA.HOSTMSG": "APPROVED", "EXTRA.TRXDATE":
    "23/11/02017 15:57:06", "failUrl": "http://test.cmi.co.ma/fail", "fatouratiExpress": "1",
    "GRACEPERIOD": "", "hashAlgorithm": "ver3", "HostRefNum": "732715056928", "id1": "id1",
    "id2": "id2", "id3": "id3", "instalment": "", "INVOICENUMBER": "", "iReqCode": "",
    "iReqDetail": "", "itemnumber1": "a1", "itemnumber2": "b1", "itemnumber3": "c1",
    "lang": "en", "MaskedPan": "400000***7190", "md":
    "400000:BD64FA1BA77717D21DA26554D2DE0C9E65AB5D5872737AE720F5D2484180228C:4024:##6000000004",
    "mdErrorMsg": "", "mdStatus": "1", "merchantID": "6000000004", "MERCHANTSURCHARGE": "",
    "noCallbackPaymentMethodList": "", "oid": "sfgzzy4", "okUrl": "http://test.cmi.co.ma/ok",
    "PResSyntaxOK": "", "PResVerified": "", "paymentType": "CARD", "payResults.dsId": "1",
    "pMethod": "", "price1": "2.00", "price2": "3.95", "price3": "3.50", "ProcReturnCode":
    "0", "productcode1": "a2", "productcode2": "b2", "productcode3": "c2", "qty1": "3",
    "qty2": "1", "qty3": "5", "RecurringFrequency": "", "RecurringFrequencyUnit": "",
    "RecurringPaymentNumber": "", "refreshtime": "10", "Response": "Approved", "ReturnOid":
    "sfgzzy4", "rnd": "lbJfQCTTrNRfMcNe111", "sessiontimeout": "", "SettleId": "1",
    "ShipToCity": "Casablanca", "ShipToCompany": "Shipping Company", "ShipToCountry": "504",
    "ShipToName": "Ship John Doe", "ShipToPostalCode": "12345", "ShipToStateProv": "mystate",
    "ShipToStreet1": "Address line 1", "ShipToStreet2": "Address line 2", "ShipToStreet3":
    "Address line 3", "ShipToTelVoice": "789456", "shopurl": "http://test.cmi.co.ma/shop",
    "SID": "", "storetype": "3D PAY HOSTING", "total1": "6.00", "total2": "3.95", "total3":
    "17.50", "TRANID": "129430", "TransId": "17327P7GH13718", "trantype": "PreAuth",
    "txstatus": "Y", "vendorCode": "", "version": "", "xid": "7AFKUXDa5KeelWxM6wxfB9YfLDY=",
}  # fmt: skip

# Guide §4.2.5 "Cas de transaction échouée", every field, as printed.
GUIDE_FAILURE = {
    "BillToCompany": "Company", "BillToName": "Name", "callbackUrl":
    "http://test.cmi.co.ma/callback", "clientid": "600000000", "clientIp": "1.1.1.1",
    "currency": "504", "CVVPresence": "1", "Ecom_Payment_Card_ExpDate_Month": "1",
    "Ecom_Payment_Card_ExpDate_Year": "20", "email": "test@cmi.co.ma", "ErrCode": "CORE-5110",
    "ErrMsg": "Multiple values exist for the single paramater.", "failUrl":
    "http://test.cmi.co.ma/fail", "hashAlgorithm": "ver3", "itemNumber": "", "lang": "fr",
    "MaskedPan": "400000***7190", "mdErrorMsg": "Multiple values exist for the single parameter.",
    "mdStatus": "7", "oid": "12345", "okUrl": "http://test.cmi.co.ma/ok", "price": "",
    "ProcReturnCode": "99", "productCode": "", "qty": "", "refreshtime": "300",
    "ResponseError": "", "retryXid": "I6Hjx1K6zUGjqY98Z+vEnR2/gr4=", "rnd":
    "mmduZ3aMFe8qDmEG1MV1", "shopurl": "http://test.cmi.co.ma/shop", "storetype":
    "3d_pay_hosting", "tel": "600000000", "total": "", "trantype": "PreAuth", "xid":
    "I6Hjx1K6zUGjqY98Z+vEnR2/gr4=", "amount": "1.00",
}  # fmt: skip

#: What each example's merchant must have sent: every field but CMI's own.
_RESULT_NAMES = set(CMI_RESULT_FIELDS) | {"hash"}


def _request_of(example: Mapping[str, str]) -> dict[str, str]:
    return {n: v for n, v in example.items() if n.lower() not in _RESULT_NAMES}


@pytest.mark.parametrize("example", [GUIDE_SUCCESS, GUIDE_FAILURE], ids=["success", "failure"])
def test_every_field_of_the_guides_examples_passes_the_name_check(
    example: dict[str, str],
) -> None:
    # As the merchant's own request (its fields pinned): bound, and strict.
    assert bind(example, _request_of(example)) == (Binding.STRICT, "")
    # Against a minimal request: every other name is one CMI (or a merchant) sends.
    minimal = {n: example[n] for n in ("oid", "amount", "currency", "rnd", "clientid")}
    binding, _note = bind(example, minimal)
    assert binding in (Binding.STRICT, Binding.LOOSE)


def test_both_spellings_of_the_3_d_secure_fields_are_known() -> None:
    for name in ("PAResSyntaxOK", "PResSyntaxOK", "ParesVerified", "PResVerified", "sID", "SID"):
        assert name.lower() in CMI_RESULT_FIELDS
