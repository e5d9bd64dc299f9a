"""Issue #17 in the Django layer: a payment through the emulator in each hash reading.

The emulator verifies the request in one reading and signs the callback and the okUrl
POST in it; the shared layer accepts them, records which reading matched on the
``CallbackLog``, and ``CMI_PAYMENTS[...]["HASH_READING"]`` pins one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cmi_django import services
from cmi_django.config import get_config
from cmi_django.models import CallbackLog, Payment
from django.core.exceptions import ImproperlyConfigured

from cmi_core import PaymentState
from cmi_core.hashing import ALL_READINGS, Reading
from cmi_core.sandbox import Sandbox
from tests.sandbox.support import Browser, Merchant

from .conftest import order
from .test_operations import merchant  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def emulated(sandbox_settings: Sandbox) -> Iterator[Sandbox]:
    """The session's emulator, its reading restored after the test."""
    before = sandbox_settings.reading
    try:
        yield sandbox_settings
    finally:
        sandbox_settings.reading = before


def _pay(sandbox: Sandbox, urls: str, reference: str) -> tuple[Payment, Browser, dict[str, str]]:
    payment, request = services.create_payment(
        platform="test",
        reference=reference,
        order=order(
            billing_name="O'Brien & fils",
            description="Porte-Documents cuir",
            ok_url=f"{urls}/ok",
            fail_url=f"{urls}/fail",
            callback_url=f"{urls}/callback",
        ),
    )
    browser = Browser(sandbox)
    assert browser.open(request.fields).status_code == 200  # not 3D-1004
    assert browser.pay().status_code == 200
    sandbox.wait_for_callbacks()
    return payment, browser, request.as_dict()


@pytest.mark.parametrize("reading", [r.value for r in ALL_READINGS])
def test_payment_through_the_emulator_in_each_reading(
    emulated: Sandbox,
    merchant: Merchant,  # noqa: F811
    reading: str,
) -> None:
    emulated.reading = Reading(reading)
    payment, browser, sent = _pay(emulated, merchant.base_url, f"r-{reading}")
    assert sent["description"] == "Porte-documents cuir"
    (received,) = merchant.wait_for("/callback", 1)
    assert services.handle_callback(received.values).reply == "APPROVED"
    payment.refresh_from_db()
    assert payment.state == PaymentState.AUTHORISED
    expected = "kit-decoded" if reading == "kit-decoded" else "guide"
    log = CallbackLog.objects.get(payment=payment, kind="callback")
    assert (log.verified, log.reading) == (True, expected)

    _, returned = browser.return_form()
    outcome = services.handle_return(dict(returned), kind="ok")
    assert outcome.approved
    assert outcome.result is not None
    assert outcome.result.fields["BillToName"] == "O'Brien & fils"
    log = CallbackLog.objects.get(payment=payment, kind="ok")
    assert (log.verified, log.reading) == (True, expected)


def test_a_pinned_reading_refuses_a_gateway_that_signs_otherwise(
    emulated: Sandbox,
    merchant: Merchant,  # noqa: F811
    settings: Any,
) -> None:
    settings.CMI_PAYMENTS["default"]["HASH_READING"] = "guide"
    assert get_config().hash_readings == (Reading.GUIDE,)
    emulated.reading = Reading.KIT_DECODED  # posts "O&#039;Brien &amp; fils"
    payment, _, _ = _pay(emulated, merchant.base_url, "r-pinned")
    (received,) = merchant.wait_for("/callback", 1)
    assert services.handle_callback(received.values).reply == "FAILURE"
    payment.refresh_from_db()
    assert payment.state == PaymentState.REDIRECTED
    log = CallbackLog.objects.get(payment=payment, kind="callback")
    assert (log.verified, log.reading) == (False, "")


def test_an_unknown_reading_is_a_configuration_error(settings: Any) -> None:
    settings.CMI_PAYMENTS = {
        "default": {"CLIENT_ID": "600000001", "STORE_KEY": "k", "HASH_READING": "php"}
    }
    with pytest.raises(ImproperlyConfigured, match="HASH_READING") as caught:
        get_config()
    assert "'guide', 'kit', 'kit-decoded'" in str(caught.value)
