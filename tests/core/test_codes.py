"""CMI's error table (guide §6.2) and the shopper/merchant messages built on it (guide §3.1)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cmi_core.codes import (
    ERROR_CODES,
    PLATFORM_REJECTION,
    ErrorCode,
    Lang,
    lookup,
    merchant_message,
    shopper_message,
)
from cmi_core.errors import ValidationError

LANGS: tuple[Lang, ...] = ("fr", "en", "ar")
ARABIC = re.compile("[\u0600-\u06ff]")

# Guide §6.2, in the guide's order: 17 platform rejections (ProcReturnCode 99), 20 bank
# rejections (ISO 8583).
EXPECTED_SYSTEM_CODES = [
    "3D-1004",
    "3D-1005",
    "3D-1034",
    "BM-1002",
    "BM-9101",
    "BM-9102",
    "CORE-2010",
    "CORE-2012",
    "CORE-2202",
    "CORE-2208",
    "CORE-2253",
    "CORE-2515",
    "CORE-5110",
    "RULE-0001",
    "RULE-0002",
    "RULE-0003",
    "RULE-0004",
    *(
        f"ISO8583-{code}"
        for code in (
            *("03", "04", "05", "12", "13", "14", "15", "39", "51", "54"),
            *("57", "61", "62", "63", "65", "82", "86", "90", "91", "96"),
        )
    ),
]

# The codes the module docstring lists as fine to explain precisely to the shopper.
PRECISE = {
    "RULE-0001",
    "CORE-5110",
    "3D-1034",
    "CORE-2012",
    "CORE-2010",
    "CORE-2515",
    "3D-1005",
    "RULE-0002",
    "RULE-0003",
    "CORE-2208",
}

# Words that would reveal a bank decline's exact reason, per language.
REVEALING = {
    "en": ["insufficient", "funds", "balance", "stolen", "lost", "cvv", "limit", "security"],
    "fr": ["insuffisant", "solde", "volée", "perdue", "cvv", "plafond", "sécurité"],
    "ar": ["رصيد", "مسروق", "مفقود", "CVV", "الحد", "سقف", "الأمان"],
}

#: The §6.2 table as the guide prints it, kept as this project's own test data (the file's
#: header says where each column comes from).
GUIDE_TABLE = Path(__file__).resolve().parent / "data" / "cmi_guide_error_table.tsv"


def guide_rows() -> list[tuple[str, ...]]:
    """The §6.2 table: one tuple of 6 cells per row, in the guide's order."""
    rows: list[tuple[str, ...]] = []
    for line in GUIDE_TABLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line:
            continue
        cells = tuple(line.split("\t"))
        assert len(cells) == 6, line
        rows.append(cells)
    return rows


def by_code(system_code: str) -> ErrorCode:
    row = lookup(err_code=system_code)
    assert row is not None
    return row


# -- the table ---------------------------------------------------------------------------


def test_every_row_of_the_guide_is_present_once_in_order() -> None:
    assert len(ERROR_CODES) == 37
    assert [row.system_code for row in ERROR_CODES] == EXPECTED_SYSTEM_CODES


def test_rows_copy_the_guide_verbatim() -> None:
    expected = guide_rows()
    assert len(expected) == 37
    actual = [
        (row.proc_return_code, row.system_code, row.en, row.fr, row.guide_ar, row.comment)
        for row in ERROR_CODES
    ]
    assert actual == expected


def test_guide_typos_are_kept_in_the_data() -> None:
    assert by_code("3D-1005").en == "Opertaion failor"
    assert by_code("3D-1034").en == "Opertaion failor"
    assert by_code("ISO8583-13").en == "INVALID AMOUNT"


def test_proc_return_codes_match_the_system_codes() -> None:
    for row in ERROR_CODES:
        if row.system_code.startswith("ISO8583-"):
            assert row.proc_return_code == row.system_code.removeprefix("ISO8583-")
        else:
            assert row.proc_return_code == "99", row.system_code


def test_every_row_has_arabic_marked_as_ours() -> None:
    for row in ERROR_CODES:
        assert ARABIC.search(row.ar), row.system_code
        assert row.ar_source == "ours", row.system_code
        assert ARABIC.search(row.shopper.get("ar")), row.system_code


def test_the_guides_placeholder_arabic_cells_are_kept_apart() -> None:
    placeholders = {row.system_code: row.guide_ar for row in ERROR_CODES if row.guide_ar}
    assert placeholders == {"BM-1002": "HOST", "RULE-0001": "."}


def test_rows_are_immutable() -> None:
    with pytest.raises(AttributeError):
        ERROR_CODES[0].en = "changed"  # type: ignore[misc]


# -- lookup ------------------------------------------------------------------------------


@pytest.mark.parametrize("system_code", EXPECTED_SYSTEM_CODES)
def test_lookup_by_err_code(system_code: str) -> None:
    row = lookup(err_code=system_code)
    assert row is not None
    assert row.system_code == system_code
    assert lookup(err_code=f" {system_code.lower()} ") is row


def test_err_code_wins_over_proc_return_code() -> None:
    assert lookup("05", "CORE-2012") is by_code("CORE-2012")
    assert lookup("99", "ISO8583-51") is by_code("ISO8583-51")


@pytest.mark.parametrize(
    ("proc_return_code", "expected"),
    [("51", "ISO8583-51"), ("04", "ISO8583-04"), ("4", "ISO8583-04"), (" 82 ", "ISO8583-82")],
)
def test_lookup_by_bare_proc_return_code(proc_return_code: str, expected: str) -> None:
    row = lookup(proc_return_code)
    assert row is not None
    assert row.system_code == expected


def test_99_alone_gives_the_generic_platform_rejection() -> None:
    row = lookup("99")
    assert row is PLATFORM_REJECTION
    assert row not in ERROR_CODES
    assert row.proc_return_code == "99"
    assert row.system_code == ""


def test_unknown_err_code_falls_back_to_proc_return_code() -> None:
    assert lookup("99", "CORE-9999") is PLATFORM_REJECTION
    assert lookup("51", "CORE-9999") is by_code("ISO8583-51")


@pytest.mark.parametrize(
    ("proc_return_code", "err_code"),
    [("07", None), (None, "CORE-9999"), ("07", "X-1"), ("00", None), (None, None), ("", "")],
)
def test_unknown_codes_and_approval_give_none(
    proc_return_code: str | None, err_code: str | None
) -> None:
    assert lookup(proc_return_code, err_code) is None


# -- shopper messages (guide §3.1) -----------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(
    "row",
    [row for row in ERROR_CODES if row.system_code not in PRECISE],
    ids=lambda row: row.system_code,
)
def test_shopper_never_learns_the_exact_reason_of_a_decline(row: ErrorCode, lang: Lang) -> None:
    text = shopper_message(row.proc_return_code, row.system_code, lang)
    assert not row.shopper.precise
    assert text != row.text(lang)
    for word in REVEALING[lang]:
        assert word.lower() not in text.lower(), (row.system_code, word)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("proc_return_code", ["51", "04", "82"])
def test_funds_stolen_card_and_cvv_declines_read_as_a_plain_decline(
    proc_return_code: str, lang: Lang
) -> None:
    by_proc = shopper_message(proc_return_code, None, lang)
    by_err = shopper_message("99", f"ISO8583-{proc_return_code}", lang)
    assert by_proc == by_err == shopper_message("05", None, lang)
    bank = {"en": "your bank", "fr": "votre banque", "ar": "البنك"}[lang]
    assert bank in by_proc


def test_all_iso8583_rows_are_generic() -> None:
    for row in ERROR_CODES:
        if row.system_code.startswith("ISO8583-"):
            assert not row.shopper.precise, row.system_code


def test_precise_shopper_texts_are_exactly_the_documented_list() -> None:
    assert {row.system_code for row in ERROR_CODES if row.shopper.precise} == PRECISE


@pytest.mark.parametrize(
    ("err_code", "lang", "expected"),
    [
        ("RULE-0001", "en", "session has expired"),
        ("RULE-0001", "fr", "session de paiement a expiré"),
        ("RULE-0001", "ar", "جلسة"),
        ("CORE-2012", "en", "card number is not valid"),
        ("CORE-2012", "fr", "numéro de carte n'est pas valide"),
        ("CORE-2010", "en", "card has expired"),
        ("CORE-2010", "fr", "carte est expirée"),
        ("CORE-2515", "en", "details you entered are incorrect"),
        ("3D-1005", "en", "authentication (3-D Secure) failed"),
        ("3D-1005", "fr", "authentification de la carte (3-D Secure) a échoué"),
    ],
)
def test_input_and_session_problems_are_explained(err_code: str, lang: Lang, expected: str) -> None:
    assert expected in shopper_message("99", err_code, lang)


def test_shopper_messages_exist_in_every_language_for_every_row() -> None:
    for row in (*ERROR_CODES, PLATFORM_REJECTION):
        texts = {
            lang: shopper_message(row.proc_return_code, row.system_code, lang) for lang in LANGS
        }
        assert all(texts.values()), row.system_code
        assert len(set(texts.values())) == 3, row.system_code
        assert ARABIC.search(texts["ar"])
        assert not ARABIC.search(texts["fr"] + texts["en"])


def test_unknown_codes_get_the_generic_decline() -> None:
    for lang in LANGS:
        assert shopper_message("07", "X-1", lang) == shopper_message("05", None, lang)
        assert shopper_message(None, None, lang) == shopper_message("05", None, lang)


def test_shopper_message_refuses_an_unknown_language() -> None:
    with pytest.raises(ValidationError):
        shopper_message("51", None, "de")  # type: ignore[arg-type]


def test_technical_failures_suggest_trying_again() -> None:
    assert "try again in a few minutes" in shopper_message("91", None, "en")
    assert "technical problem" in shopper_message("99", "BM-9101", "en")


# -- merchant messages -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "lang", "expected"),
    [
        (("51", None), "en", "ISO8583-51: Insufficient funds."),
        (("51", None), "fr", "ISO8583-51: Solde de la carte insuffisant."),
        (
            ("99", "iso8583-04"),
            "fr",
            "ISO8583-04: Autorisation de paiement rejetée avec cette carte.",
        ),
        (
            ("99", "CORE-2008"),
            "en",
            (
                "CORE-2008: code not in CMI's error table (guide §6.2); "
                "99: Rejected by the CMI platform."
            ),
        ),
        (("99", None), "en", "99: Rejected by the CMI platform."),
        ((None, "3D-1005"), "en", "3D-1005: Operation failed."),
        ((None, "3D-1005"), "fr", "3D-1005: Echec de l'opération."),
        (("07", None), "en", "07: code not in CMI's error table (guide §6.2)."),
        (
            ("99", "RULE-0001"),
            "en",
            (
                "RULE-0001: Your session has expired. Please return to the merchant website "
                "and try again."
            ),
        ),
    ],
)
def test_merchant_message_is_precise_with_its_code(
    args: tuple[str | None, str | None], lang: Lang, expected: str
) -> None:
    assert merchant_message(*args, lang=lang) == expected


def test_merchant_message_in_arabic() -> None:
    text = merchant_message("51", None, "ar")
    assert text.startswith("ISO8583-51: ")
    assert "رصيد" in text


def test_merchant_message_defaults_to_english() -> None:
    assert merchant_message("82") == "ISO8583-82: CVV Failure or CVV Value supplied is not valid."
