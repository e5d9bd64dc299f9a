"""What the platforms used to write each in their own way, now written once (issue #14).

The redirect form's response, the return pages' signed tokens, the dashboards' action
context, the JSON form of core values, and CMI's language list.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from cmi_django.browser import ReturnTokens, redirect_form_response
from cmi_django.dashboard import action_context
from cmi_django.models import Payment
from django.core import signing
from django.test import Client

from cmi_core import PaymentState
from cmi_core.jsonable import jsonable
from tests.adapters.django.conftest import callback_for, post_callback

ROOT = Path(__file__).resolve().parents[3]


def test_tokens_round_trip_and_refuse_forgery_other_salts_and_age() -> None:
    tokens = ReturnTokens("test.return", max_age=60)
    assert tokens.read(tokens.sign("oid-1")) == {"o": "oid-1"}
    assert tokens.read(tokens.sign("oid-2", a=True, m="ok")) == {"o": "oid-2", "a": True, "m": "ok"}
    token = tokens.sign("oid-1")
    assert tokens.read(token[:-2] + "xx") is None
    assert ReturnTokens("another.return", max_age=60).read(token) is None
    assert tokens.read(signing.dumps({"no": "oid"}, salt="test.return")) is None
    old = ReturnTokens("test.return", max_age=1)
    signed = old.sign("oid-3")
    time.sleep(2.1)
    assert old.read(signed) is None


def test_tokens_read_those_signed_before_the_helper() -> None:
    """Oscar's links in e-mails and browsers' history keep working (same format)."""
    before = signing.dumps("100042-1", salt="cmi_oscar.return", compress=False)
    tokens = ReturnTokens("cmi_oscar.return", max_age=60)
    assert tokens.read(before) == {"o": "100042-1"}
    assert tokens.sign("100042-1") == before


@pytest.mark.django_db
def test_the_redirect_form_response_is_never_cached() -> None:
    from cmi_django import services

    _, signed = services.create_payment(
        platform="test",
        reference="r-1",
        order={
            "amount": Decimal("10.00"),
            "email": "a@example.ma",
            "billing_name": "A",
            "ok_url": "https://shop.example.ma/ok/",
            "fail_url": "https://shop.example.ma/fail/",
        },
    )
    response = redirect_form_response(signed, lang="ar")
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Type"] == "text/html; charset=utf-8"
    fields = {k.lower(): v for k, v in signed.as_dict().items()}
    assert fields["hash"] in response.content.decode()


@pytest.mark.django_db
def test_action_context_names_what_both_dashboards_render(client: Client, payment: Payment) -> None:
    fresh = action_context(payment)
    assert fresh["can_capture"] is fresh["can_void"] is fresh["can_refund"] is False
    assert fresh["decline_reason"] == ""
    assert fresh["action_key"] != action_context(payment)["action_key"]
    post_callback(client, callback_for(payment, approved=False))
    payment.refresh_from_db()
    assert action_context(payment)["decline_reason"]  # CMI's refusal, in the merchant's words
    post_callback(client, callback_for(payment))
    payment.refresh_from_db()
    assert PaymentState(payment.state) is PaymentState.CAPTURED
    paid = action_context(payment)
    assert (paid["can_capture"], paid["can_refund"]) == (False, True)
    assert (paid["refundable"], paid["refundable_input"]) == (Decimal("120.50"), "120.50")


def test_jsonable_keeps_money_exact_and_dates_iso() -> None:
    when = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    value = {"amount": Decimal("0.10"), "state": PaymentState.CAPTURED, "at": when, "n": (1,)}
    assert jsonable(value) == {
        "amount": "0.10",
        "state": "captured",
        "at": "2026-12-06T10:00:00+00:00",
        "n": [1],
    }


def test_cmis_languages_are_written_once() -> None:
    """``("fr", "en", "ar")`` is ``cmi_core.codes.LANGUAGES``; nobody spells it again."""
    spelled = re.compile(
        r"""\(\s*["'](?:fr|en|ar)["'],\s*["'](?:fr|en|ar)["'],\s*["'](?:fr|en|ar)["']\s*\)"""
    )
    found = []
    for folder in ("cmi_core", "adapters"):
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts or path.name == "codes.py":
                continue
            if spelled.search(path.read_text(encoding="utf-8")):
                found.append(str(path.relative_to(ROOT)))
    assert found == []
