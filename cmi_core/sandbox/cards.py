"""The emulator's test cards, and what the "issuer" answers for each.

Guide §6.2 lists the outcomes a shopper can meet; every one of them has a card here, so
an integration sees declines, 3-D Secure failures and platform rejections before it sees
real money. Numbers are well-known Visa/Mastercard test numbers (Luhn-valid); a decline
card carries its ISO 8583 code in digits 13-14 (``4000 0000 0000 0515`` -> ``51``).

Any expiry date in the future and any 3-digit CVV are accepted; a past expiry gives
``CORE-2010``, a number failing the Luhn check ``CORE-2012``, a badly typed date or CVV
``CORE-2515``, and a valid number that is not a test card ``RULE-0004`` (the emulator
never authorises a card it does not know).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cmi_core.sandbox.clock import local
from cmi_core.sandbox.fields import ascii_digits

__all__ = [
    "CHALLENGE_CODE",
    "TEST_CARDS",
    "CardCheck",
    "CardEntry",
    "Outcome",
    "TestCard",
    "brand_of",
    "check_card",
    "find_card",
    "luhn_valid",
    "mask_pan",
]

Kind = Literal["approved", "challenge", "auth_failed", "declined"]

#: The one-time code the 3-D Secure challenge page accepts.
CHALLENGE_CODE = "123456"


@dataclass(frozen=True, slots=True)
class TestCard:
    """A card number the emulator knows and what it does."""

    __test__ = False  # not a pytest test class

    pan: str
    brand: str
    issuer: str
    kind: Kind
    proc_return_code: str
    description: str


TEST_CARDS: tuple[TestCard, ...] = (
    TestCard("4111111111111111", "VISA", "CIH BANK", "approved", "00", "Approved, no challenge"),
    TestCard(
        "5555555555554444",
        "MASTERCARD",
        "ATTIJARIWAFA BANK",
        "approved",
        "00",
        "Approved, no challenge",
    ),
    TestCard(
        "4000000000003220",
        "VISA",
        "BANK OF AFRICA",
        "challenge",
        "00",
        f"3-D Secure challenge: code {CHALLENGE_CODE} approves, any other code gives 3D-1005",
    ),
    TestCard(
        "5200000000000007",
        "MASTERCARD",
        "CDM",
        "challenge",
        "00",
        f"3-D Secure challenge: code {CHALLENGE_CODE} approves, any other code gives 3D-1005",
    ),
    TestCard(
        "4000000000000101",
        "VISA",
        "CIH BANK",
        "auth_failed",
        "99",
        "3-D Secure authentication fails (mdStatus 0, 3D-1005)",
    ),
    TestCard("4000000000000051", "VISA", "CIH BANK", "declined", "05", "Declined 05"),
    TestCard("4000000000000515", "VISA", "CIH BANK", "declined", "51", "Declined 51"),
    TestCard("4000000000000549", "VISA", "CIH BANK", "declined", "54", "Declined 54"),
    TestCard("4000000000000044", "VISA", "CIH BANK", "declined", "04", "Declined 04"),
    TestCard("4000000000000614", "VISA", "CIH BANK", "declined", "61", "Declined 61"),
    TestCard("4000000000000820", "VISA", "CIH BANK", "declined", "82", "Declined 82"),
    TestCard("4000000000000911", "VISA", "CIH BANK", "declined", "91", "Declined 91"),
)
_BY_PAN = {card.pan: card for card in TEST_CARDS}


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of an attempt, in the terms of the callback (guide §4.2.3)."""

    response: Literal["Approved", "Declined", "Error"]
    proc_return_code: str
    err_code: str = ""
    md_status: str = ""
    md_error: str = ""

    @property
    def approved(self) -> bool:
        return self.response == "Approved" and self.proc_return_code == "00"

    @classmethod
    def platform_error(cls, err_code: str, md_status: str = "7", md_error: str = "") -> Outcome:
        return cls("Error", "99", err_code, md_status, md_error)


@dataclass(frozen=True, slots=True)
class CardEntry:
    """What the shopper typed (the PAN is never stored beyond the attempt)."""

    pan: str
    month: str
    year: str
    cvv: str
    holder: str = ""

    @property
    def digits(self) -> str:
        return re.sub(r"[\s-]", "", self.pan)

    @property
    def year2(self) -> str:
        """The expiry year as the callback carries it: two digits."""
        text = self.year.strip()
        return text[-2:] if ascii_digits(text) else text


@dataclass(frozen=True, slots=True)
class CardCheck:
    """The card's checks: an immediate outcome (errors), or the test card to run."""

    card: TestCard | None
    outcome: Outcome | None
    brand: str
    issuer: str
    masked_pan: str


def luhn_valid(number: str) -> bool:
    if not ascii_digits(number) or not 12 <= len(number) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def brand_of(number: str) -> str:
    if number.startswith("4"):
        return "VISA"
    if number[:2] in ("51", "52", "53", "54", "55") or "2221" <= number[:4] <= "2720":
        return "MASTERCARD"
    return "CMI"


def mask_pan(number: str) -> str:
    """``4000000000007190`` -> ``400000***7190``, as in guide §4.2.5."""
    if len(number) < 10:
        return "***"
    return f"{number[:6]}***{number[-4:]}"


def find_card(pan: str) -> TestCard | None:
    return _BY_PAN.get(re.sub(r"[\s-]", "", pan))


def check_card(entry: CardEntry, now: datetime) -> CardCheck:
    """Run the platform's checks on a typed card (number, expiry, CVV), guide §6.2."""
    number = entry.digits
    digits = ascii_digits(number)  # "0"-"9" only: never str.isdigit (Arabic-Indic digits)
    masked = mask_pan(number) if digits else ""
    brand = brand_of(number) if digits else ""
    if not luhn_valid(number):
        return CardCheck(None, Outcome.platform_error("CORE-2012"), brand, "", masked)
    card = _BY_PAN.get(number)
    issuer = card.issuer if card else ""
    month, year, cvv = entry.month.strip(), entry.year.strip(), entry.cvv.strip()
    if not (
        ascii_digits(month)
        and len(month) <= 2
        and 1 <= int(month) <= 12
        and ascii_digits(year)
        and len(year) in (2, 4)
    ):
        return CardCheck(card, Outcome.platform_error("CORE-2515"), brand, issuer, masked)
    full_year = int(year) if len(year) == 4 else 2000 + int(year)
    today = local(now)
    if (full_year, int(month)) < (today.year, today.month):
        return CardCheck(card, Outcome.platform_error("CORE-2010"), brand, issuer, masked)
    if not re.fullmatch(r"[0-9]{3,4}", cvv):
        return CardCheck(card, Outcome.platform_error("CORE-2515"), brand, issuer, masked)
    if card is None:
        return CardCheck(None, Outcome.platform_error("RULE-0004"), brand, issuer, masked)
    return CardCheck(card, None, brand, issuer, masked)


def issuer_outcome(card: TestCard) -> Outcome:
    """The authorisation answer for a test card once 3-D Secure passed (mdStatus 1)."""
    if card.kind == "declined":
        return Outcome("Declined", card.proc_return_code, f"ISO8583-{card.proc_return_code}", "1")
    if card.kind == "auth_failed":
        return Outcome("Error", "99", "3D-1005", "0", "Authentication failed")
    return Outcome("Approved", "00", "", "1")


#: Result of a failed 3-D Secure challenge (wrong one-time code).
CHALLENGE_FAILED = Outcome("Error", "99", "3D-1005", "0", "Authentication failed")
