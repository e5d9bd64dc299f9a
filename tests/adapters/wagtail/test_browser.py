"""The shopper in a real browser: Wagtail page -> the emulator's card page -> landing route.

Debian's Chromium through Playwright (the ``page`` fixture of ``tests/conftest.py``,
skipped with the reason when Chromium is missing), the Wagtail site in pytest-django's
``live_server`` and ``Sandbox(port=0)`` as CMI.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from cmi_django.models import Payment
from cmi_wagtail.models import PaymentPage
from wagtail.models import Site

from cmi_core import PaymentState
from cmi_core.sandbox import Sandbox

from .conftest import configure
from .test_admin import INDEX, act, pay_through_sandbox  # noqa: F401 - a fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

APPROVED = "4111 1111 1111 1111"
DECLINED = "4000 0000 0000 0051"


@pytest.fixture
def shop(
    live_server: Any, sandbox: Sandbox, site: Site, make_page: Callable[..., PaymentPage]
) -> Callable[..., tuple[str, PaymentPage]]:
    configure(site, base_url=sandbox.base_url, capture_mode="auto")

    def make(**fields: Any) -> tuple[str, PaymentPage]:
        payment_page = make_page(**fields)
        return f"{live_server.url}{payment_page.url}", payment_page

    return make


def fill_shopper(page: Any, url: str, **extra: str) -> None:
    page.goto(url)
    page.fill("#id_name", "Amina Test")
    page.fill("#id_email", "amina@example.ma")
    for name, value in extra.items():
        page.fill(f"#id_{name}", value)
    page.locator("#cmi-shopper-form button[type=submit]").click()
    page.wait_for_selector("#pan")


def pay_card(page: Any, pan: str) -> None:
    page.fill("#pan", pan)
    page.fill("#month", "12")
    page.fill("#year", "34")
    page.fill("#cv2", "123")
    page.locator("#card button").first.click()


def back_to_shop(page: Any) -> None:
    """Follow the result page to okUrl/failUrl (it may submit itself)."""
    page.wait_for_selector("#return button, [data-cmi-result]")
    if page.locator("[data-cmi-result]").count() == 0:
        page.locator("#return button").click()
    page.wait_for_selector("[data-cmi-result]")


def only_payment() -> Payment:
    (payment,) = Payment.objects.all()
    return payment


def test_approved_payment(
    page: Any, shop: Callable[..., tuple[str, PaymentPage]], sandbox: Sandbox
) -> None:
    url, _ = shop(amount_rule="free", min_amount=Decimal(10), max_amount=Decimal(500))
    fill_shopper(page, url, amount="120.50")
    assert "120.50" in page.inner_text("body")
    pay_card(page, APPROVED)
    back_to_shop(page)
    assert "/thank-you/" in page.url
    assert page.locator('[data-cmi-result="approved"]').count() == 1
    assert "Merci pour votre paiement." in page.inner_text("body")
    payment = only_payment()
    assert payment.state == PaymentState.CAPTURED.value
    assert payment.amount == Decimal("120.50")
    assert sandbox.order(payment.oid).state == "POST"


def test_declined_then_approved(
    page: Any, shop: Callable[..., tuple[str, PaymentPage]], sandbox: Sandbox
) -> None:
    url, _ = shop()
    fill_shopper(page, url)
    pay_card(page, DECLINED)
    page.wait_for_selector("#pan")  # the emulator shows its card form again, with the reason
    payment = only_payment()
    assert payment.declined_attempts == 1
    assert payment.state == PaymentState.DECLINED.value
    pay_card(page, APPROVED)
    back_to_shop(page)
    assert "/thank-you/" in page.url
    payment.refresh_from_db()
    assert payment.state == PaymentState.CAPTURED.value
    assert payment.declined_attempts == 1
    assert sandbox.order(payment.oid).state == "POST"


def test_cancel_on_the_card_page(page: Any, shop: Callable[..., tuple[str, PaymentPage]]) -> None:
    url, payment_page = shop()
    fill_shopper(page, url)
    page.locator("#cancel").click()
    page.wait_for_selector("[data-cmi-cancelled]")
    assert page.url.endswith(f"{payment_page.url}cancel/")
    assert page.locator("#id_email").count() == 1
    assert only_payment().state == PaymentState.REDIRECTED.value


def test_arabic_page_and_card_page_are_rtl(
    page: Any, shop: Callable[..., tuple[str, PaymentPage]]
) -> None:
    url, _ = shop(locale="ar", slug="tabarru")
    page.goto(url)
    assert page.evaluate("document.documentElement.dir") == "rtl"
    fill_shopper(page, url)
    assert page.evaluate("document.documentElement.dir") == "rtl"  # CMI's page, in Arabic
    assert page.evaluate("document.documentElement.lang") == "ar"


def test_refund_button_is_disabled_once_the_form_is_sent(
    page: Any,
    pay_through_sandbox: Callable[..., Payment],  # noqa: F811 - the fixture imported above
    admin_client: Any,
    live_server: Any,
) -> None:
    """The staff form disables its button when submitted (the server's key is the guarantee:
    ``tests/adapters/django/test_money_once.py``)."""
    payment = pay_through_sandbox()
    act(admin_client, payment, "capture", "150.00")
    cookie = admin_client.cookies["sessionid"].value
    page.context.add_cookies([{"name": "sessionid", "value": cookie, "url": live_server.url}])
    page.goto(f"{live_server.url}{INDEX}inspect/{payment.pk}/")
    disabled = page.evaluate(
        """() => {
            const form = document.querySelector('form[data-cmi-action="refund"]');
            const button = form.querySelector("button[type=submit]");
            form.querySelector("input[name=amount]").value = "10.00";  // required: typed
            const before = button.disabled;
            // listening after the page's own handler: the page stays, the button is read
            form.addEventListener("submit", (event) => event.preventDefault());
            button.click();
            return [before, button.disabled];
        }"""
    )
    assert disabled == [False, True]
