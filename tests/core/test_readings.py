"""Issue #17: the hash under each reading of guide §4.1.3, and requests all readings agree on.

The guide says the character after "document" becomes "."; the PHP kits derived from CMI's
sample code lower-case the word and replace one *byte* (never a newline), and their
callback handlers HTML-decode values first. The references below are written from the
PHP code, independently of :mod:`cmi_core.hashing`, so each reading has two
implementations to agree with.
"""

from __future__ import annotations

import base64
import hashlib
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmi_core import CMIConfig, verify_callback
from cmi_core.errors import ConfigurationError, SignatureError, ValidationError
from cmi_core.hashing import (
    ALL_READINGS,
    Reading,
    compute_hash,
    hash_plaintext,
    html_entity_decode,
    natcase_sorted,
    neutralise,
    parse_readings,
    readings_agree,
    verify_hash,
)
from cmi_core.request import LineItem, PaymentOrder, build_payment_request

KEY = "TEST1234|\\key"
ISSUE_VALUES = [
    "Porte-Documents cuir",
    "DOCUMENTS administratifs",
    "Documentation technique",
    "Classeur documenté",
]
PHP_TRIM = b" \t\n\r\0\x0b"

# -- references written from the PHP -----------------------------------------------------


def _php_escape(data: bytes) -> bytes:
    return data.replace(b"\\", b"\\\\").replace(b"|", b"\\|")


def _php_document_bytes(data: bytes) -> bytes:
    """preg_replace('/document(.)/i', 'document.', $v): bytes, ASCII case, "." not \\n."""
    out, i = bytearray(), 0
    while i < len(data):
        if data[i : i + 8].lower() == b"document" and i + 8 < len(data) and data[i + 8] != 10:
            out += b"document."
            i += 9
        else:
            out.append(data[i])
            i += 1
    return bytes(out)


def _guide_document_chars(text: str) -> str:
    """§4.1.3 literally: the character after "document" (any case) becomes "."."""
    out, i = [], 0
    while i < len(text):
        if text[i : i + 8].lower() == "document" and i + 8 < len(text):
            out.append(text[i : i + 8] + ".")
            i += 9
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def reference_value(value: str, reading: Reading) -> bytes:
    if reading is Reading.GUIDE:
        text = value.strip(PHP_TRIM.decode())
        return _guide_document_chars(text.replace("\\", "\\\\").replace("|", "\\|")).encode("utf-8")
    if reading is Reading.KIT_DECODED:
        if value.endswith("\n"):  # preg_replace("/\n$/", "", $v)
            value = value[:-2] if value.endswith("\n\n") else value[:-1]
        value = html_entity_decode(value)
    return _php_document_bytes(_php_escape(value.encode("utf-8").strip(PHP_TRIM)))


def reference_hash(fields: dict[str, str], key: str, reading: Reading) -> str:
    names = [n for n in natcase_sorted(fields) if n.lower() not in ("hash", "encoding")]
    plain = b"".join(reference_value(fields[n], reading) + b"|" for n in names)
    plain += _php_escape(key.encode("utf-8"))
    return base64.b64encode(hashlib.sha512(plain).digest()).decode("ascii")


# -- the readings ---------------------------------------------------------------------

words = st.sampled_from(
    ["document", "Document", "DOCUMENT", "dOcUmEnT", "docu", "ment", "documents", "é", "É",
     "’", "\n", " ", "|", "\\", "&amp;", "&#39;", "&#x44;", "&lt;", "&apos;", "&", ";",
     "ocument", "d", "t", "Porte-", "\t", "ß", "ü", "–", "\u00a0", "漢", "😀", "&#68;"]
)  # fmt: skip
texts = st.one_of(
    st.lists(st.one_of(words, st.text(max_size=3)), max_size=12).map("".join),
    st.text(max_size=30),
)


@settings(max_examples=400, deadline=None)
@given(texts)
def test_property_each_reading_equals_its_reference(value: str) -> None:
    fields = {"description": value, "oid": "A-1"}
    for reading in ALL_READINGS:
        assert compute_hash(fields, KEY, reading) == reference_hash(fields, KEY, reading)


@settings(max_examples=600, deadline=None)
@given(texts)
def test_property_neutralised_values_hash_alike_in_every_reading(value: str) -> None:
    sent = neutralise(value)
    fields = {"description": sent, "BillToName": sent, "amount": "1.00"}
    hashes = {compute_hash(fields, KEY, r) for r in ALL_READINGS}
    hashes |= {reference_hash(fields, KEY, r) for r in ALL_READINGS}
    assert len(hashes) == 1
    assert readings_agree(sent)
    assert neutralise(sent) == sent  # a fixed point: sending it again changes nothing
    assert len(sent) <= len(value)  # never longer: free text stays within its limit
    assert html_entity_decode(sent) == sent  # a decoding gateway sees the same text
    if "ocument" not in value.lower() and "&" not in value:
        assert sent == value  # nothing else is ever touched


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("Porte-Documents cuir", "Porte-documents cuir"),
        ("DOCUMENTS administratifs", "documents administratifs"),
        ("Documentation technique", "documentation technique"),
        ("Classeur documenté", "Classeur documente"),
    ],
)
def test_the_four_values_of_the_issue(value: str, sent: str) -> None:
    fields = {"description": value}
    assert compute_hash(fields, KEY, Reading.GUIDE) != compute_hash(fields, KEY, Reading.KIT)
    assert neutralise(value) == sent
    signed = {"description": sent}
    for reading in ALL_READINGS:
        assert compute_hash(signed, KEY, reading) == reference_hash(signed, KEY, Reading.GUIDE)


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("document", "document"),  # nothing follows: no reading touches it
        ("DOCUMENT", "DOCUMENT"),
        ("Document ", "document "),  # trimmed before hashing: harmless either way
        ("documentdocument", "documentdocument"),  # "documentd" then "ocument"
        ("DOCUMENTDOCUMENTÉ", "documentdocumentÉ"),  # ASCII capitals lowered; "É" follows no match
        ("Document’s case", "document's case"),
        ("document\nabc", "document abc"),  # "." never matches \n in the kits
        ("document\rabc", "document abc"),  # nor \r in a PCRE built for CRLF newlines
        ("DOCUMENTSİ", "documentsİ"),  # only ASCII capitals lowered: never longer
        ("documentñ", "documentn"),
        ("documentæ", "document "),  # no decomposition, no look-alike: a space
        ("document漢字", "document 字"),  # no ASCII look-alike: a space
        ("Fish &amp;amp; Chips", "Fish & Chips"),
        ("&#68;ocumenté", "documente"),  # decoding makes a new "document": fixed too
        ("O'Brien & fils", "O'Brien & fils"),
    ],
)
def test_neutralise_edge_cases(value: str, sent: str) -> None:
    assert neutralise(value) == sent
    assert readings_agree(sent)
    assert len(sent) <= len(value)  # free text already cut to its limit stays within it


def test_kit_reading_hashes_one_byte_and_lowers_the_word() -> None:
    assert hash_plaintext({"d": "Classeur documenté"}, "k", Reading.GUIDE) == (
        "Classeur document.|k"
    )
    raw = reference_value("Classeur documenté", Reading.KIT)
    assert raw == b"Classeur document.\xa9"  # the second byte of "é" stays
    assert hash_plaintext({"d": "DOCUMENTS"}, "k", Reading.KIT) == "document.|k"
    assert hash_plaintext({"d": "document\nx"}, "k", Reading.KIT) == "document\nx|k"
    assert hash_plaintext({"d": "document\nx"}, "k", Reading.GUIDE) == "document.x|k"
    assert hash_plaintext({"d": "O&#39;Brien\n"}, "k", Reading.KIT_DECODED) == "O'Brien|k"


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("O&#39;Brien &amp; fils", "O'Brien & fils"),
        ("&#x27;&#X27;&quot;&lt;&gt;", "''\"<>"),
        ("&apos;", "&apos;"),  # not an HTML 4.01 name
        ("&AMP; &Amp;", "&AMP; &Amp;"),  # names are case-sensitive
        ("&eacute;t&eacute; &nbsp;&euro;", "été \u00a0€"),
        ("&amp", "&amp"),  # the semicolon is required
        ("&#0; &#1; &#11; &#127; &#128; &#159; &#xD800; &#xDFFF; &#x110000;", None),
        ("&#xFFFE;&#xFDD0;&#x10FFFF;&#xA0;", "\ufffe\ufdd0\U0010ffff\u00a0"),  # as PHP 8.2
        ("&#9;&#10;&#13;&#32;", "\t\n\r "),
        ("&#x0x41; &#x0x;", "A &#x0x;"),  # strtol takes a 0x after the x
        ("&#0000065;", "A"),
        ("&&amp;;", "&&;"),
        ("&#" + "9" * 5000 + ";", None),  # no int() of a hostile digit run
    ],
)
def test_html_entity_decode_like_php(encoded: str, decoded: str | None) -> None:
    assert html_entity_decode(encoded) == (encoded if decoded is None else decoded)


# -- verifying -------------------------------------------------------------------------

RESULT = {
    "oid": "A-1",
    "amount": "10.00",
    "currency": "504",
    "ProcReturnCode": "00",
    "Response": "Approved",
    "BillToName": "O'Brien & fils",
    "description": "Porte-Documents cuir",
}
ENCODED = {
    **RESULT,
    "BillToName": "O&#039;Brien &amp; fils",
    "description": "Porte-Documents cuir",
}


@pytest.mark.parametrize("reading", ALL_READINGS)
def test_a_result_signed_in_any_reading_verifies_and_names_it(reading: Reading) -> None:
    posted = ENCODED if reading is Reading.KIT_DECODED else RESULT
    hashed = RESULT if reading is Reading.KIT_DECODED else posted
    signed = {**posted, "HASH": compute_hash(hashed, KEY, Reading(reading.replace("-decoded", "")))}
    verified = verify_hash(signed, KEY)
    assert verified.reading is reading
    assert verified.fields["BillToName"] == "O'Brien & fils"
    result = verify_callback(signed, KEY)
    assert result.reading == reading.value
    assert result.fields["BillToName"] == "O'Brien & fils"
    assert result.approved


@pytest.mark.parametrize("reading", ALL_READINGS)
def test_a_pinned_reading_refuses_the_others(reading: Reading) -> None:
    signed = {**ENCODED, "HASH": compute_hash(ENCODED, KEY, Reading.KIT)}  # KIT only
    if reading is Reading.KIT:
        assert verify_hash(signed, KEY, (reading,)).reading is Reading.KIT
        assert verify_hash(signed, KEY, "kit").reading is Reading.KIT  # a name alone
    else:
        with pytest.raises(SignatureError):
            verify_callback(signed, KEY, readings=(reading,))


def test_no_reading_accepts_another_key() -> None:
    for reading in ALL_READINGS:
        signed = {**RESULT, "HASH": compute_hash(RESULT, KEY + "x", reading)}
        with pytest.raises(SignatureError):
            verify_hash(signed, KEY)


def test_decoded_values_are_only_used_when_the_decoding_reading_matched() -> None:
    literal = {**RESULT, "BillToName": "Tom &amp; Jerry"}
    signed = {**literal, "HASH": compute_hash(literal, KEY)}
    verified = verify_hash(signed, KEY)
    assert verified.reading is Reading.GUIDE
    assert verified.fields["BillToName"] == "Tom &amp; Jerry"


def test_parse_readings() -> None:
    assert parse_readings(None) == ALL_READINGS
    assert parse_readings("all") == ALL_READINGS
    assert parse_readings(" KIT ") == (Reading.KIT,)
    assert parse_readings(["guide", "kit-decoded"]) == (Reading.GUIDE, Reading.KIT_DECODED)
    for bad in ("php", [], ["guide", "x"]):
        with pytest.raises(ValueError, match="'guide', 'kit', 'kit-decoded'"):
            parse_readings(bad)


def test_config_pins_a_reading_and_refuses_unknown_ones() -> None:
    assert CMIConfig(client_id="1", store_key="k").hash_readings == ALL_READINGS
    pinned = CMIConfig(client_id="1", store_key="k", hash_reading="kit")
    assert pinned.hash_readings == (Reading.KIT,)
    unset = CMIConfig(client_id="1", store_key="k", hash_reading=None)  # type: ignore[arg-type]
    assert unset.hash_readings == ALL_READINGS
    with pytest.raises(ConfigurationError) as caught:
        CMIConfig(client_id="1", store_key="k", hash_reading="php")
    assert caught.value.setting == "hash_reading"


# -- requests ----------------------------------------------------------------------------

CONFIG = CMIConfig(client_id="600000001", store_key=KEY)


def _order(**values: object) -> PaymentOrder:
    base: dict[str, object] = {
        "oid": "A-1",
        "amount": Decimal("120.50"),
        "email": "client@example.ma",
        "billing_name": "Amina",
        "ok_url": "https://shop.ma/ok",
        "fail_url": "https://shop.ma/fail",
    }
    base.update(values)
    return PaymentOrder(**base)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(texts, texts)
def test_property_built_requests_verify_in_every_reading(description: str, name: str) -> None:
    request = build_payment_request(
        CONFIG,
        _order(
            description=description,
            billing_name="Amina " + name,  # never blank: a blank name is refused, rightly
            items=[LineItem(id="1", description=description)],
        ),
    )
    fields = request.as_dict()
    for reading in ALL_READINGS:
        assert verify_hash(fields, KEY, (reading,)).reading is reading
        assert reference_hash(fields, KEY, reading) == fields["hash"]


def test_request_with_the_four_values_verifies_in_every_reading() -> None:
    request = build_payment_request(
        CONFIG,
        _order(
            description=ISSUE_VALUES[0],
            billing_name=ISSUE_VALUES[1],
            items=[LineItem(id=str(n), description=v) for n, v in enumerate(ISSUE_VALUES, 1)],
        ),
    )
    fields = request.as_dict()
    assert fields["description"] == "Porte-documents cuir"
    assert fields["BillToName"] == "documents administratifs"
    assert [fields[f"desc{n}"] for n in range(1, 5)] == [
        "Porte-documents cuir",
        "documents administratifs",
        "documentation technique",
        "Classeur documente",
    ]
    for reading in ALL_READINGS:
        assert verify_hash(fields, KEY, (reading,)).reading is reading


def test_urls_keep_their_resource_and_identifiers_are_refused_not_altered() -> None:
    request = build_payment_request(
        CONFIG,
        _order(
            ok_url="https://Shop.MA/Documents/ok?next=documenté",
            email="Documents@example.ma",
        ),
    )
    fields = request.as_dict()
    assert fields["okUrl"] == "https://shop.ma/%44ocuments/ok?next=%64ocumenté"
    assert fields["email"] == "documents@example.ma"
    for reading in ALL_READINGS:
        assert verify_hash(fields, KEY, (reading,)).reading is reading
    with pytest.raises(ValidationError) as caught:
        build_payment_request(CONFIG, _order(oid="DOCUMENT-1"))
    assert caught.value.field == "oid"
    assert "document" in caught.value.rule
    with pytest.raises(ValidationError) as caught:
        build_payment_request(CONFIG, _order(extra={"note": "R&amp;D"}))
    assert caught.value.field == "note"
