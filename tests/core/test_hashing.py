"""The ver3 hash: known answers from the guide, PHP's natcasesort, escaping, properties."""

from __future__ import annotations

import base64
import hashlib
import itertools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmi_core import hashing
from cmi_core.errors import SignatureError
from cmi_core.hashing import (
    compute_hash,
    hash_plaintext,
    natcase_sorted,
    strnatcasecmp,
    verify_hash,
)
from tests.conftest import missing_service

# Guide §4.1.3: the example parameters, their order and plaintext, store key ABCD1234.
GUIDE_FIELDS = {
    "clientId": "100200127",
    "amount": "95.93",
    "okurl": "http://localhost:8080/SampleCodeJSPTTest/GenericVer3ResponseHandler",
    "failUrl": "http://localhost:8080/SampleCodeJSPTTest/GenericVer3ResponseHandler",
    "TranType": "PreAuth",
    "email": "",
    "callbackUrl": "http://localhost:8080/SampleCodeJSPTTest/GateResponseControl.jsp",
    "currency": "504",
    "rnd": "87954458746",
    "storeType": "3d_pay_hosting",
    "lang": "en",
    "hashAlgorithm": "ver3",
    "BillToName": "name",
    "BillTocompany": "billToCompany",
}
GUIDE_PLAINTEXT = (
    "95.93|billToCompany|name|http://localhost:8080/SampleCodeJSPTTest/GateResponseControl.jsp"
    "|100200127|504||http://localhost:8080/SampleCodeJSPTTest/GenericVer3ResponseHandler|ver3"
    "|en|http://localhost:8080/SampleCodeJSPTTest/GenericVer3ResponseHandler|87954458746"
    "|3d_pay_hosting|PreAuth|ABCD1234"
)
# SHA-512/Base64 of GUIDE_PLAINTEXT, computed once and pinned as a regression vector.
GUIDE_HASH = (
    "bWMuDPPzpgwzCOI4k+pCwpKHe67O5mJclE2pH50AdCutkg9fl+VMeqOrNQL9deekqPEN5+mk+WGIkP40l5t+Ig=="
)


@pytest.fixture(autouse=True, params=["C", "pure Python"])
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs on both definitions of the plaintext: the C accelerator
    (``cmi_core._speedups``, built where a compiler exists) and the pure-Python one."""
    if request.param == "C" and not hashing.ACCELERATED:
        missing_service("the C accelerator cmi_core._speedups was not built (no C compiler?)")
    if request.param == "pure Python":
        monkeypatch.setattr(hashing, "_c_plaintext", None)
    return str(request.param)


def sha(text: str) -> str:
    return base64.b64encode(hashlib.sha512(text.encode("utf-8")).digest()).decode()


def test_guide_example_plaintext_and_hash() -> None:
    assert hash_plaintext(GUIDE_FIELDS, "ABCD1234") == GUIDE_PLAINTEXT
    assert compute_hash(GUIDE_FIELDS, "ABCD1234") == sha(GUIDE_PLAINTEXT) == GUIDE_HASH


def test_guide_example_order_of_names() -> None:
    names = natcase_sorted(GUIDE_FIELDS)
    assert names == [
        "amount", "BillTocompany", "BillToName", "callbackUrl", "clientId", "currency",
        "email", "failUrl", "hashAlgorithm", "lang", "okurl", "rnd", "storeType", "TranType",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("smaller", "larger"),
    [
        ("price2", "price10"),
        ("Id9", "id10"),
        ("EXTRAS", "EXTRA_X"),
        ("EXTRA.CARDBRAND", "EXTRA.CARDISSUER"),
        ("EXTRA.TRXDATE", "EXTRAS"),  # '.' (0x2E) before 'S'
        ("amount", "BillToName"),
        ("desc2", "desc12"),
        ("total1", "totalA"),  # digits (0x3x) before letters
        ("x01", "x1"),  # a run with a leading 0 compares digit by digit
        ("a", "ab"),
        ("Z", "_"),
    ],
)
def test_strnatcasecmp_orders_like_php(smaller: str, larger: str) -> None:
    assert strnatcasecmp(smaller, larger) == -1
    assert strnatcasecmp(larger, smaller) == 1


@pytest.mark.parametrize(
    ("a", "b"), [("Amount", "amount"), ("ID10", "id10"), ("", ""), ("a ", "a "), ("a b", "ab")]
)
def test_strnatcasecmp_equal_ignoring_case(a: str, b: str) -> None:
    assert strnatcasecmp(a, b) == 0


def test_twelve_item_lines_sort_numerically() -> None:
    fields = {f"price{n}": f"{n}.00" for n in range(1, 15)}
    shuffled = dict(
        random.Random(4).sample(  # noqa: S311 - a fixed shuffle, not a secret
            sorted(fields.items()), len(fields)
        )
    )
    expected = "|".join(f"{n}.00" for n in range(1, 15)) + "|K"
    assert hash_plaintext(shuffled, "K") == expected


def test_hash_and_encoding_excluded_whatever_their_case() -> None:
    base = {"amount": "10.00", "oid": "A1"}
    with_extras = {**base, "HASH": "x", "Hash": "y", "ENCODING": "utf-8", "encoding": "utf-8"}
    assert hash_plaintext(with_extras, "K") == hash_plaintext(base, "K") == "10.00|A1|K"


def test_empty_values_are_kept() -> None:
    assert hash_plaintext({"a": "", "b": "x", "c": ""}, "K") == "|x||K"


def test_backslash_escaped_before_pipe() -> None:
    # "a\|b" must become "a\\\|b": backslash doubled first, then the pipe escaped.
    assert hash_plaintext({"v": "a\\|b"}, "K") == "a\\\\\\|b|K"
    assert hash_plaintext({"v": "ORDER-256712jbs\\j6b"}, "K") == "ORDER-256712jbs\\\\j6b|K"
    assert hash_plaintext({"v": "x"}, "k|e\\y") == "x|k\\|e\\\\y"


def test_php_trim_only() -> None:
    # PHP's trim removes " \t\n\r\0\x0B"; Python's strip() would also remove \x0c and U+00A0.
    fields = {"a": " \t\n\r\0\x0b value \x0b", "b": "\x0cform-feed\xa0"}
    assert hash_plaintext(fields, "K") == "value|\x0cform-feed\xa0|K"


@pytest.mark.parametrize(
    ("value", "hashed"),
    [
        ("documentabc", "document.bc"),
        ("document abc", "document.abc"),
        ("My DOCUMENT!", "My DOCUMENT."),
        ("document", "document"),
        ("documentdocument", "document.ocument"),
        ("a|document|b", "a\\|document.|b"),  # applied to the escaped value
    ],
)
def test_document_rule(value: str, hashed: str) -> None:
    assert hash_plaintext({"desc1": value, "id1": "1"}, "K") == f"{hashed}|1|K"


def test_names_with_dots_are_hashed_raw() -> None:
    fields = {"EXTRA.CARDBRAND": "VISA", "EXTRA_CARDBRAND": "MC", "EXTRAS": "s"}
    assert hash_plaintext(fields, "K") == "VISA|s|MC|K"


def test_arabic_and_accented_values_hash_as_utf8() -> None:
    fields = {"BillToName": "محمد العلوي", "BillToCity": "Fès", "desc1": "Thé à la menthe"}
    plaintext = "Fès|محمد العلوي|Thé à la menthe|clé"
    assert hash_plaintext(fields, "clé") == plaintext
    assert compute_hash(fields, "clé") == sha(plaintext)


def test_verify_accepts_the_right_hash_in_any_case_of_name() -> None:
    fields = {"oid": "A1", "amount": "1.00"}
    digest = compute_hash(fields, "K")
    verify_hash({**fields, "HASH": digest}, "K")
    verify_hash({**fields, "hash": digest}, "K")


@pytest.mark.parametrize("bad", [None, "", "   ", "bm90IHRoZSBoYXNo"])
def test_verify_refuses_missing_or_wrong_hash(bad: str | None) -> None:
    fields = {"oid": "A1", "amount": "1.00"}
    if bad is not None:
        fields["HASH"] = bad
    with pytest.raises(SignatureError):
        verify_hash(fields, "K")


def test_verify_refuses_a_hash_made_with_another_key() -> None:
    fields = {"oid": "A1", "amount": "1.00"}
    with pytest.raises(SignatureError) as info:
        verify_hash({**fields, "HASH": compute_hash(fields, "OTHER")}, "SECRET-KEY")
    assert "SECRET-KEY" not in str(info.value)


names = st.text(st.characters(codec="ascii", exclude_characters="\x00"), min_size=1, max_size=12)
values = st.text(max_size=20)
field_maps = st.dictionaries(names, values, min_size=1, max_size=15)


@settings(max_examples=200, deadline=None)
@given(field_maps, st.randoms())
def test_property_field_order_never_changes_the_hash(
    fields: dict[str, str], rnd: random.Random
) -> None:
    items = list(fields.items())
    rnd.shuffle(items)
    ordered = natcase_sorted(fields)
    if any(strnatcasecmp(a, b) == 0 for a, b in itertools.pairwise(ordered)):
        return  # names PHP finds equal (Id/ID, 0/00) keep their posted order (stable sort)
    assert compute_hash(dict(items), "K") == compute_hash(fields, "K")


@settings(max_examples=200, deadline=None)
@given(st.lists(values, min_size=1, max_size=8), st.lists(values, min_size=1, max_size=8))
def test_property_distinct_value_lists_never_share_a_plaintext(
    first: list[str], second: list[str]
) -> None:
    a = {f"f{i}": v for i, v in enumerate(first)}
    b = {f"f{i}": v for i, v in enumerate(second)}
    trimmed_a = [v.strip(" \t\n\r\0\x0b") for v in first]
    trimmed_b = [v.strip(" \t\n\r\0\x0b") for v in second]
    if "document" in "".join(first + second).lower():
        return  # the document rule maps several values to one on purpose (guide 1.4.2)
    if trimmed_a != trimmed_b:
        assert hash_plaintext(a, "K") != hash_plaintext(b, "K")


@settings(max_examples=150, deadline=None)
@given(field_maps, st.data())
def test_property_signed_fields_verify_and_any_change_fails(
    fields: dict[str, str], data: st.DataObject
) -> None:
    fields = {k: v for k, v in fields.items() if k.lower() not in ("hash", "encoding")}
    if not fields:
        return
    signed = {**fields, "HASH": compute_hash(fields, "K")}
    verify_hash(signed, "K")
    name = data.draw(st.sampled_from(sorted(fields)))
    old = fields[name].strip(" \t\n\r\0\x0b")
    new = data.draw(values.filter(lambda v: v.strip(" \t\n\r\0\x0b") != old))
    if "document" in (old + new).lower():
        return
    with pytest.raises(SignatureError):
        verify_hash({**signed, name: new}, "K")


def test_remembered_order_is_per_name_set() -> None:
    assert hash_plaintext({"b": "1", "a": "2"}, "K") == "2|1|K"
    assert hash_plaintext({"c": "1", "a": "2"}, "K") == "2|1|K"
    assert hash_plaintext({"a": "2", "c": "1"}, "K") == "2|1|K"
    assert hash_plaintext({"b": "1", "HASH": "x"}, "K") == "1|K"
    assert hash_plaintext({"b": "1", "zz": "x"}, "K") == "1|x|K"
    assert hash_plaintext({"b": "1", "c": "2", "HASH": "h"}, "K") == "1|2|K"
    assert hash_plaintext({"c": "2", "d": "1", "HASH": "h"}, "K") == "2|1|K"


def test_names_php_finds_equal_keep_their_posted_order() -> None:
    assert hash_plaintext({"Id1": "x", "ID1": "y"}, "K") == "x|y|K"
    assert hash_plaintext({"ID1": "y", "Id1": "x"}, "K") == "y|x|K"


def test_only_ascii_digits_are_digit_runs() -> None:
    # C's isdigit knows no "²" or Arabic-Indic digits: they compare as bytes, after "1".
    assert strnatcasecmp("x²", "x10") == 1
    assert hash_plaintext({"x²": "A", "x10": "B"}, "K") == "B|A|K"


# -- the C accelerator against the pure-Python definition --------------------------------

# Values rich in what the plaintext rules act on: trim characters, "\\" and "|", the word
# "document" in any case, the separator the pure-Python fast path uses, multi-byte text.
tricky = st.lists(
    st.sampled_from(
        [" ", "\t", "\n", "\r", "\0", "\x0b", "\x0c", "\\", "|", "\x1f", "document",
         "DoCuMeNt", "d", "é", "م", "😀", "a", "7", "\xa0"]
    )
    | st.text(max_size=4),
    max_size=12,
).map("".join)  # fmt: skip


C_PLAINTEXT = hashing._c_plaintext  # the C definition, whatever a test patches
# Property tests of C against Python; they run once, under the "C" implementation.
ACCELERATOR_PROPERTY = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def both(fields: dict[str, str], names: tuple[str, ...], kept: int) -> tuple[object, object]:
    """The C result and the pure-Python result (or the exception type each raised)."""
    tail = b"|" + b"K\\\\|"
    results: list[object] = []
    for compute in (
        lambda: C_PLAINTEXT(fields, names, kept, tail),  # type: ignore[misc]
        lambda: hashing._plaintext_python(fields, names, kept, tail),
    ):
        try:
            results.append(compute())
        except (KeyError, TypeError, UnicodeEncodeError) as exc:
            results.append(type(exc))
    return results[0], results[1]


@ACCELERATOR_PROPERTY
@given(st.lists(tricky, min_size=1, max_size=20), st.data())
def test_accelerator_equals_the_python_definition(
    implementation: str, values: list[str], data: st.DataObject
) -> None:
    if implementation != "C":
        return  # compared with the pure-Python definition, so run once
    fields = {f"f{i}": value for i, value in enumerate(values)}
    names = tuple(fields)
    kept = data.draw(st.integers(0, len(names)))
    c_result, python_result = both(fields, names, kept)
    assert c_result == python_result


@pytest.mark.parametrize(
    ("fields", "names", "kept", "expected"),
    [
        ({"a": "x", "HASH": "h"}, ("a", "HASH"), 1, b"x|K\\\\|"),
        ({"HASH": "h"}, ("HASH",), 0, b"K\\\\|"),  # nothing hashed: no "|" before the key
        ({"a": "x"}, ("a", "b"), 1, KeyError),  # every name must be there
        ({"a": 1}, ("a",), 1, TypeError),
        ({"a": "x\ud800"}, ("a",), 1, UnicodeEncodeError),  # as str.encode raises
        ({"a": "documenté|x"}, ("a",), 1, b"document.\\|x|K\\\\|"),  # a whole character
        ({"a": "x document"}, ("a",), 1, b"x document|K\\\\|"),  # nothing after the word
        ({"a": " \t\0\x0b"}, ("a",), 1, b"|K\\\\|"),
        ({f"n{i}": str(i) for i in range(300)}, tuple(f"n{i}" for i in range(300)), 300, None),
    ],
)
def test_accelerator_edge_cases(
    implementation: str, fields: dict[str, object], names: tuple[str, ...], kept: int,
    expected: object,
) -> None:  # fmt: skip
    if implementation != "C":
        return  # compared with the pure-Python definition, so run once
    c_result, python_result = both(fields, names, kept)  # type: ignore[arg-type]
    assert c_result == python_result
    if expected is not None:
        assert c_result == expected


def test_accelerator_reads_mappings_through_getitem(implementation: str) -> None:
    class LastValue(dict):  # like Django's QueryDict: a dict whose [] gives the last value
        def __getitem__(self, name: str) -> str:
            return str(super().__getitem__(name)[-1])

    fields = LastValue({"b": ["1", "2"], "a": ["3"]})
    assert hash_plaintext(fields, "K") == "3|2|K"  # type: ignore[arg-type]
    assert hash_plaintext(fields, "K") == "3|2|K"  # type: ignore[arg-type]  # cached order


@pytest.mark.parametrize(
    ("fields", "names", "kept", "expected"),
    [
        # Every name is looked up before any value is checked, as _plaintext_python does:
        ({"a": 1}, ("a", "b"), 2, KeyError),
        ({"a": "x\ud800"}, ("a", "b"), 2, KeyError),
        # Every value is checked to be a str before any is encoded, as str.join then encode:
        ({"a": "x\ud800", "b": 1}, ("a", "b"), 2, TypeError),
        ({"a": "x\ud800", "b": "y", "c": 1}, ("a", "b", "c"), 3, TypeError),
    ],
)
def test_accelerator_raises_what_the_python_definition_raises_first(
    implementation: str, fields: dict[str, object], names: tuple[str, ...], kept: int,
    expected: type[Exception],
) -> None:  # fmt: skip
    if implementation != "C":
        return  # compared with the pure-Python definition, so run once
    assert both(fields, names, kept) == (expected, expected)  # type: ignore[arg-type]


def test_a_surrogate_and_a_non_str_raise_type_error_in_both(
    implementation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hashing, "_ORDERS", {})
    with pytest.raises(TypeError):
        compute_hash({"a": "x\ud800", "b": 1}, "K")  # type: ignore[dict-item]
    assert hash_plaintext({"a": "1", "c": "2"}, "K") == "1|2|K"  # remembered, same size
    with pytest.raises(TypeError):
        compute_hash({"a": "x\ud800", "b": 1}, "K")  # type: ignore[dict-item]


def test_accelerator_with_an_empty_tail_and_nothing_kept(implementation: str) -> None:
    if implementation != "C":
        return
    assert C_PLAINTEXT({"HASH": "h"}, ("HASH",), 0, b"") == b""  # type: ignore[misc]  # as b""[1:]


def test_str_subclass_values_hash_their_characters(implementation: str) -> None:
    class Loud(str):  # overridden methods are not what CMI hashes: the characters are
        __slots__ = ()

        def strip(self, chars: str | None = None) -> str:
            return "STRIPPED"

    assert hash_plaintext({"a": Loud("x"), "b": "y"}, "K") == "x|y|K"
    assert hash_plaintext({"a": Loud(" x "), "b": "y"}, "K") == "x|y|K"
    assert hash_plaintext({"a": Loud("x"), "b": "documentz"}, "K") == "x|document.|K"


def test_a_defaultdict_never_reuses_the_order_of_another_name_set(
    implementation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collections import defaultdict

    monkeypatch.setattr(hashing, "_ORDERS", {})
    assert hash_plaintext({"a": "1", "b": "2", "HASH": "h"}, "K") == "1|2|K"  # remembered
    fields = defaultdict(str, {"a": "1", "c": "EVIL", "HASH": "h"})  # same size, no "b"
    assert hash_plaintext(fields, "K") == "1|EVIL|K"  # "c" is signed, "b" is not invented
    assert dict(fields) == {"a": "1", "c": "EVIL", "HASH": "h"}  # and nothing was added


@ACCELERATOR_PROPERTY
@given(
    st.lists(st.sampled_from(["x", " document|", "x\ud800", 1, None, b"x"]), max_size=6),
    st.data(),
)
def test_accelerator_fails_like_the_python_definition(
    implementation: str, values: list[object], data: st.DataObject
) -> None:
    if implementation != "C":
        return  # compared with the pure-Python definition, so run once
    fields = {f"f{i}": value for i, value in enumerate(values)}
    present_and_missing = [f"f{i}" for i in range(len(values) + data.draw(st.integers(0, 2)))]
    names = tuple(data.draw(st.permutations(present_and_missing)))
    kept = data.draw(st.integers(0, len(names)))
    tail = b"|K"

    results: list[object] = []
    for compute in (
        lambda: C_PLAINTEXT(fields, names, kept, tail),  # type: ignore[misc]
        lambda: hashing._plaintext_python(fields, names, kept, tail),  # type: ignore[arg-type]
    ):
        try:
            results.append(compute())
        except (KeyError, TypeError, UnicodeEncodeError) as exc:
            results.append(type(exc))
    assert results[0] == results[1]
