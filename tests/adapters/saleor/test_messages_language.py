"""Saleor's event messages are in the shopper's language (issue 13).

CMI's callback has no shopper request, so the server's default language would apply to
what the app tells Saleor. The payment records the language the shopper paid in
(``Payment.lang``, from ``data.lang`` of ``transactionInitialize``); the report is built
in it, with money formatted as money there (:func:`cmi_django.display.format_money`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from cmi_django import services
from cmi_django.display import format_money
from cmi_django.models import Payment
from django.test import Client
from django.utils import translation

from cmi_core.sandbox import Sandbox
from tests.adapters.saleor import test_end_to_end as e2e
from tests.adapters.saleor.conftest import send
from tests.adapters.saleor.standin import (
    FakeSaleor,
    action_payload,
    new_transaction,
    session_payload,
)
from tests.adapters.saleor.test_end_to_end import INIT, act
from tests.adapters.saleor.test_sessions import (
    RETURN_URL,
    callback_for,
    initialize,
    post_callback,
)
from tests.sandbox.support import APPROVED_CARD, Browser

# Reports go out after the commit (cmi_saleor.reports), which a rolled-back test never reaches.
pytestmark = pytest.mark.django_db(transaction=True)

sandbox = e2e.sandbox  # the emulator and the app on a live server, as end to end
app = e2e.app

EXPECTED = {
    "fr": ("Le CMI a encaissé {amount}, code d'autorisation", "CMI\u00a0: payé"),
    "ar": ("حصّل CMI مبلغ {amount}، رمز التفويض", "CMI: مدفوع"),
    "en": ("CMI captured {amount}, auth code", "CMI: paid"),
}


@pytest.mark.parametrize("lang", ["fr", "ar", "en"])
def test_the_charge_is_reported_in_the_shopper_s_language(
    client: Client, saleor: FakeSaleor, channel: Any, lang: str
) -> None:
    transaction, answer = initialize(client, saleor, data={"returnUrl": RETURN_URL, "lang": lang})
    assert Payment.objects.get().lang == lang
    with translation.override("en"):  # the server's language: not the shopper's
        assert post_callback(client, callback_for(answer)) == "ACTION=POSTAUTH"
    [report] = saleor.reports
    assert report["type"] == "CHARGE_SUCCESS"
    amount = format_money(Decimal("120.50"), "504", lang)
    reported, processed = EXPECTED[lang]
    assert report["message"].startswith(reported.format(amount=amount)), report["message"]
    assert "120.500" not in report["message"]
    event = "TRANSACTION_PROCESS_SESSION"
    again = send(client, saleor, event, session_payload(event, transaction)).json()
    assert again["message"] == processed


def test_french_and_arabic_differ_in_their_money(
    client: Client, saleor: FakeSaleor, channel: Any
) -> None:
    """The amount itself follows the language: "120,50 MAD" in French."""
    _, answer = initialize(client, saleor, data={"returnUrl": RETURN_URL, "lang": "fr"})
    post_callback(client, callback_for(answer))
    assert "120,50\xa0MAD" in saleor.reports[0]["message"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_staff_refund_and_refused_cancel_speak_the_shopper_s_language(
    client: Client, saleor: FakeSaleor, sandbox: Sandbox, app: Any, lang: str
) -> None:
    """CMI is the emulator: the shopper pays on its page, staff refund in the admin."""
    transaction = new_transaction()
    payload = session_payload(INIT, transaction, data={"returnUrl": RETURN_URL, "lang": lang})
    answer = act(client, saleor, INIT, payload)
    browser = Browser(sandbox)
    browser.open(list(answer["data"]["fields"].items()))
    browser.pay(APPROVED_CARD)
    services.refund(Payment.objects.get(), Decimal("20.50"), user="staff")
    refund = saleor.reports[-1]
    assert refund["type"] == "REFUND_SUCCESS"
    expected = {"fr": "Le CMI a remboursé", "ar": "ردّ CMI مبلغ"}[lang]
    assert refund["message"] == f"{expected} {format_money(Decimal('20.50'), '504', lang)}"
    event = "TRANSACTION_CANCELATION_REQUESTED"
    cancel = act(client, saleor, event, action_payload(transaction, "CANCEL", "100.00"))
    assert cancel["result"] == "CANCEL_FAILURE"
    assert format_money(Decimal("120.50"), "504", lang) in cancel["message"]
    assert cancel["message"].startswith({"fr": "Le CMI a encaissé", "ar": "حصّل CMI"}[lang])
