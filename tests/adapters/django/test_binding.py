"""Issue 11's forged approval, end to end through the shared layer: a result proves its
whole payment (cmi_core.binding), on the callback and on the okUrl return alike.

The attacker pays a cheap payment whose address holds an expensive one's oid and amount,
then renames the fields of the cheap payment's genuine signed result (the hash signs
values, not names) so that they read as the expensive one's approval.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from cmi_django import services
from cmi_django.models import CallbackLog, Payment
from django.test import Client

from cmi_core import Address, PaymentState
from cmi_core.hashing import verify_hash
from cmi_core.sandbox import DEFAULT_MERCHANT, Sandbox
from cmi_core.testing import make_callback, sign
from tests.adapters.django.testapp.models import HookCall
from tests.core.test_binding import forged_fields, search

from .conftest import STORE_KEY, post_callback

pytestmark = pytest.mark.django_db

EXPENSIVE = Decimal("4999.00")
FILLERS = [f"{letters}{n}" for letters in ("a", "aa", "b", "c", "m", "p", "x", "z")
           for n in range(1, 40)]  # fmt: skip


def forge(expensive: Payment, genuine: dict[str, str]) -> dict[str, str]:
    """The renaming of ``genuine`` that reads as ``expensive``'s approval (hash intact)."""
    pinned = {"oid": expensive.oid, "amount": "4999.00", "currency": "504",
              "ProcReturnCode": "00", "Response": "Approved"}  # fmt: skip
    names = search(genuine, pinned, FILLERS, lambda value, name: True)
    assert names is not None, "the attack must be possible against the hash alone"
    forged = forged_fields(genuine, names)
    verify_hash(forged, STORE_KEY)
    return forged


@pytest.fixture
def attack(make_payment: Callable[..., Payment]) -> tuple[Payment, dict[str, str]]:
    expensive = make_payment(amount=EXPENSIVE)
    cheap = make_payment(
        amount=Decimal("10.00"),
        billing=Address(city="4999.00"),
        description=expensive.oid,
    )
    genuine = make_callback(
        STORE_KEY, oid=cheap.oid, amount=cheap.amount, request_fields=cheap.request_fields
    )
    return expensive, forge(expensive, genuine)


def test_a_renamed_approval_of_another_payment_is_refused_on_the_callback(
    client: Client, attack: tuple[Payment, dict[str, str]]
) -> None:
    expensive, forged = attack
    assert post_callback(client, forged).content == b"FAILURE"
    expensive.refresh_from_db()
    assert (expensive.state, expensive.captured_amount) == (PaymentState.REDIRECTED, 0)
    assert not HookCall.objects.filter(oid=expensive.oid).exists()
    log = CallbackLog.objects.get(payment=expensive)
    assert (log.outcome, log.verified) == ("invalid", False)
    assert "not bound to its request" in log.error


def test_a_renamed_approval_of_another_payment_is_refused_on_the_ok_return(
    client: Client, attack: tuple[Payment, dict[str, str]]
) -> None:
    expensive, forged = attack
    response = client.post(
        "/cmi/ok/", data=urlencode(forged), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code < 500
    expensive.refresh_from_db()
    assert expensive.state == PaymentState.REDIRECTED
    assert not HookCall.objects.filter(oid=expensive.oid).exists()
    outcome = services.handle_return(forged, kind="ok")
    assert (outcome.payment, outcome.approved, outcome.verified) == (None, False, False)


def _loose(payment: Payment) -> dict[str, str]:
    """The payment's genuine approval with a field CMI shows empty given a value: bound,
    but loose (such a value could hide another payment's)."""
    genuine = make_callback(
        DEFAULT_MERCHANT.store_key,
        oid=payment.oid,
        amount=payment.amount,
        request_fields=payment.request_fields,
    )
    return sign({**genuine, "DIMCRITERIA1": "cmi-123456789012"}, DEFAULT_MERCHANT.store_key)


def _pay_on_emulator(sandbox: Sandbox) -> Payment:
    from tests.sandbox.support import Browser

    payment, request = services.create_payment(
        platform="test",
        reference="basket-9",
        order={
            "amount": Decimal("120.50"),
            "email": "client@example.ma",
            "billing_name": "Amina Test",
            "ok_url": "https://shop.example.ma/cmi/ok/",
            "fail_url": "https://shop.example.ma/cmi/fail/",
            "callback_url": "http://127.0.0.1:9/unreachable",
        },
    )
    browser = Browser(sandbox)
    assert browser.open(request.fields).status_code == 200
    assert browser.pay().status_code == 200
    sandbox.wait_for_callbacks()
    return payment


def test_a_loose_approval_confirmed_by_cmi_is_accepted(
    sandbox_settings: Sandbox, make_payment: Callable[..., Payment]
) -> None:
    payment = _pay_on_emulator(sandbox_settings)
    assert sandbox_settings.order(payment.oid).state == "PRE"
    outcome = services.handle_callback(_loose(payment))
    assert outcome.reply == "APPROVED"  # manual capture mode in sandbox_settings
    payment.refresh_from_db()
    assert payment.state == PaymentState.AUTHORISED


def test_a_loose_approval_cmi_does_not_know_is_refused(
    sandbox_settings: Sandbox, make_payment: Callable[..., Payment]
) -> None:
    payment = make_payment()  # never paid at CMI
    outcome = services.handle_callback(_loose(payment))
    assert outcome.reply == "FAILURE"
    payment.refresh_from_db()
    assert payment.state == PaymentState.REDIRECTED
    log = CallbackLog.objects.get(payment=payment)
    assert log.outcome == "unconfirmed"
    assert "dimcriteria1" in log.error


def test_a_loose_approval_without_an_api_user_is_refused(
    settings: Any, make_payment: Callable[..., Payment]
) -> None:
    payment = make_payment()
    settings.CMI_PAYMENTS = {
        "default": {
            "CLIENT_ID": DEFAULT_MERCHANT.client_id,
            "STORE_KEY": DEFAULT_MERCHANT.store_key,
        }
    }
    assert services.handle_callback(_loose(payment)).reply == "FAILURE"
    payment.refresh_from_db()
    assert payment.state == PaymentState.REDIRECTED


def test_a_payment_without_its_request_needs_cmis_confirmation(
    sandbox_settings: Sandbox, make_payment: Callable[..., Payment]
) -> None:
    """Payments made before requests were kept (migration 0002 leaves them empty)."""
    unpaid = make_payment()
    Payment.objects.filter(pk=unpaid.pk).update(request_fields={})
    approval = make_callback(
        DEFAULT_MERCHANT.store_key,
        oid=unpaid.oid,
        amount=unpaid.amount,
        request_fields=unpaid.request_fields,
    )
    assert services.handle_callback(approval).reply == "FAILURE"
    paid = _pay_on_emulator(sandbox_settings)
    Payment.objects.filter(pk=paid.pk).update(request_fields={})
    approval = make_callback(
        DEFAULT_MERCHANT.store_key,
        oid=paid.oid,
        amount=paid.amount,
        request_fields=paid.request_fields,
    )
    assert services.handle_callback(approval).reply == "APPROVED"
    paid.refresh_from_db()
    assert paid.state == PaymentState.AUTHORISED
