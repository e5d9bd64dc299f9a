"""The whole purchase in a real browser: Oscar's checkout, the emulator's page, the order.

Chromium (Playwright) drives the shop on pytest-django's ``live_server``; the emulator
(``cmi sandbox``) serves CMI's page and posts its callbacks to the live server, as CMI
would. Skipped, with the reason, when Chromium is missing (``tests/conftest.py``).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from cmi_django.models import CallbackLog, Payment
from django.urls import reverse
from oscar.core.loading import get_model

from cmi_core.sandbox import CHALLENGE_CODE, Sandbox
from tests.adapters.oscar.conftest import sandbox_payments

Order = get_model("order", "Order")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sync_orm_beside_playwright"),
]

APPROVED = "4111 1111 1111 1111"
DECLINED = "4000 0000 0000 0051"
CHALLENGE = "4000 0000 0000 3220"


@pytest.fixture
def shop(live_server: Any, sandbox: Sandbox, settings: Any, product: Any) -> str:
    """The live shop's base URL, paying through the emulator (auto capture, API user)."""
    settings.CMI_PAYMENTS = sandbox_payments(sandbox.base_url)
    return str(live_server.url)


def to_cmi(page: Any, shop: str, product: Any) -> None:
    """Product page -> basket -> guest checkout -> "Pay by card": CMI's card form."""
    page.goto(shop + product.get_absolute_url())
    page.click("#add_to_basket_form button[type=submit]")
    page.goto(shop + reverse("checkout:index"))
    page.fill("#id_username", "amina@example.ma")
    page.click("form.card button[type=submit]")
    page.fill("#id_first_name", "Amina")
    page.fill("#id_last_name", "Test")
    page.fill("#id_line1", "12 rue Tarik")
    page.fill("#id_line4", "Casablanca")
    page.fill("#id_postcode", "20000")
    page.click("#new_shipping_address button[type=submit]")
    page.click("#view_preview")
    page.click("#place-order")
    page.wait_for_selector("#pan")


def pay(page: Any, pan: str) -> None:
    page.fill("#pan", pan)
    page.fill("#month", "12")
    page.fill("#year", "34")
    page.fill("#cv2", "123")
    page.click("#card button[type=submit]")


def back_to_shop(page: Any) -> None:
    """The result page's button: the browser POST to okUrl/failUrl."""
    page.wait_for_selector("#return button")
    page.click("#return button")


def assert_thank_you(page: Any) -> Any:
    page.wait_for_url("**/checkout/thank-you/")
    order = Order.objects.get()
    assert order.number in page.inner_text("body")
    return order


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_approved_purchase(page: Any, shop: str, product: Any, sandbox: Sandbox) -> None:
    to_cmi(page, shop, product)
    pay(page, APPROVED)
    back_to_shop(page)
    order = assert_thank_you(page)
    payment = Payment.objects.get()
    assert payment.state == "captured"
    assert order.status == "Paid"
    assert sandbox.order(payment.oid).state == "POST"
    assert CallbackLog.objects.get(kind="callback").reply == "ACTION=POSTAUTH"


def test_decline_then_approval(page: Any, shop: str, product: Any, sandbox: Sandbox) -> None:
    to_cmi(page, shop, product)
    pay(page, DECLINED)
    page.wait_for_selector("#error")
    back_to_shop(page)  # "Retour au site marchand": failUrl
    page.wait_for_url("**/checkout/payment-details/")
    assert "declined" in page.inner_text("body").lower()
    page.click("#view_preview")
    page.click("#place-order")
    page.wait_for_selector("#pan")
    pay(page, APPROVED)
    back_to_shop(page)
    order = assert_thank_you(page)
    first, second = Payment.objects.order_by("id")
    assert (first.state, second.state) == ("declined", "captured")
    assert second.oid == f"{order.number}-2"


def test_three_d_secure_challenge(page: Any, shop: str, product: Any, sandbox: Sandbox) -> None:
    to_cmi(page, shop, product)
    pay(page, CHALLENGE)
    page.wait_for_selector("#otp")
    page.fill("#otp", CHALLENGE_CODE)
    page.click("#challenge button[type=submit]")
    back_to_shop(page)
    assert_thank_you(page)
    assert Payment.objects.get().state == "captured"


def test_cancel_on_cmi_page(page: Any, shop: str, product: Any) -> None:
    to_cmi(page, shop, product)
    page.click("#cancel")
    page.wait_for_url("**/checkout/payment-details/")
    assert "cancelled" in page.inner_text("body").lower()
    page.goto(shop + reverse("basket:summary"))
    assert product.title in page.inner_text("body")
    assert not Order.objects.exists()


def test_dropped_callback_okurl_places_the_order(
    page: Any, shop: str, product: Any, sandbox: Sandbox
) -> None:
    sandbox.set_fault("drop", client_id="600000001")
    to_cmi(page, shop, product)
    pay(page, APPROVED)
    back_to_shop(page)
    assert_thank_you(page)
    payment = Payment.objects.get()
    assert not CallbackLog.objects.filter(kind="callback").exists()
    # Auto mode: captured through the API after the okUrl's transaction committed.
    assert wait_for(lambda: sandbox.order(payment.oid).state == "POST")
    assert wait_for(lambda: Payment.objects.get().state == "captured")
    assert Order.objects.get().status == "Paid"


def test_callback_sent_twice(page: Any, shop: str, product: Any, sandbox: Sandbox) -> None:
    sandbox.set_fault("twice", client_id="600000001")
    to_cmi(page, shop, product)
    pay(page, APPROVED)
    back_to_shop(page)
    order = assert_thank_you(page)
    replies = list(CallbackLog.objects.filter(kind="callback").values_list("reply", flat=True))
    assert replies == ["ACTION=POSTAUTH", "ACTION=POSTAUTH"]
    assert order.sources.get().amount_debited == order.total_incl_tax
    assert Order.objects.count() == 1
