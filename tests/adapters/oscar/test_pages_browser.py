"""What shoppers and staff see, in a real browser (issue #13): the shopper's language for
the order placed during CMI's callback and for its e-mail, Arabic right to left, money as
money on the dashboard, the confirmation step before a void, Oscar's order page after a
void and after a partial capture.

Screenshots go to ``$CMI_SCREENSHOTS`` when it is set (nothing is written otherwise).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cmi_django.models import Payment
from django.core import mail
from django.test import Client
from django.urls import reverse
from oscar.core.loading import get_model

from cmi_core.sandbox import Sandbox
from tests.adapters.bidi import english_left, english_msgids, reads_left_to_right
from tests.adapters.oscar.conftest import sandbox_payments
from tests.adapters.oscar.test_browser import APPROVED, back_to_shop, pay, to_cmi, wait_for

Order = get_model("order", "Order")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sync_orm_beside_playwright"),
]

DEMO = Path(__file__).resolve().parents[3] / "examples/oscar_shop"


def shot(page: Any, name: str) -> None:
    folder = os.environ.get("CMI_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"oscar-{name}.png"), full_page=True)


@pytest.fixture
def shop(live_server: Any, sandbox: Sandbox, settings: Any, product: Any) -> str:
    """The live shop (manual capture), the site's default language French, and the demo
    shop's templates (its ``oscar/base.html`` sets ``dir``) and Arabic supplement."""
    settings.CMI_PAYMENTS = sandbox_payments(sandbox.base_url, capture_mode="manual")
    settings.LANGUAGE_CODE = "fr"
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(DEMO / "oscar_shop/templates")]}]
    settings.LOCALE_PATHS = [str(DEMO / "locale")]
    settings.STATICFILES_DIRS = [str(DEMO / "oscar_shop/static")]  # its RTL stylesheets
    settings.OSCAR_CURRENCY_FORMAT = {  # as the demo shop's settings
        "MAD": {"format": "#,##0.00\xa0¤¤", "currency_digits": False}
    }
    return str(live_server.url)


def browser_page(chromium: Any, locale: str) -> Iterator[Any]:
    context = chromium.new_context(locale=locale, viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def english(chromium: Any) -> Iterator[Any]:
    yield from browser_page(chromium, "en-US")


@pytest.fixture
def arabic(chromium: Any) -> Iterator[Any]:
    yield from browser_page(chromium, "ar")


def staff_in(chromium: Any, shop: str, django_user_model: Any, locale: str) -> Iterator[Any]:
    """A staff member (allowed every order: Oscar's order pages), signed in."""
    user = django_user_model.objects.create_superuser("staff", "staff@example.ma", "pw")
    client = Client()
    client.force_login(user)
    for page in browser_page(chromium, locale):
        page.context.add_cookies(
            [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": shop}]
        )
        yield page


@pytest.fixture
def french_staff(chromium: Any, shop: str, django_user_model: Any) -> Iterator[Any]:
    yield from staff_in(chromium, shop, django_user_model, "fr-FR")


@pytest.fixture
def arabic_staff(chromium: Any, shop: str, django_user_model: Any) -> Iterator[Any]:
    yield from staff_in(chromium, shop, django_user_model, "ar")


def computed(page: Any, selector: str, prop: str) -> str:
    """The first ``selector`` element's computed ``prop``."""
    return str(
        page.eval_on_selector(selector, f"e => getComputedStyle(e).{prop}")  # a CSS property
    )


def buy(page: Any, shop: str, product: Any, name: str = "") -> Any:
    to_cmi(page, shop, product)
    oid = Payment.objects.get().oid
    if name:
        shot(page, f"emulator-card-{name}")
    # CMI's page (the emulator) draws the order reference whole, also right to left
    # ("100001-1", not "1-100001").
    assert reads_left_to_right(page, "dl", oid)
    pay(page, APPROVED)
    page.wait_for_selector("#return button")
    if name:
        shot(page, f"emulator-result-{name}")
    digits = APPROVED.replace(" ", "")
    assert reads_left_to_right(page, "body", oid)
    assert reads_left_to_right(page, "body", f"{digits[:6]}***{digits[-4:]}")  # the card
    back_to_shop(page)
    page.wait_for_url("**/checkout/thank-you/")
    return Order.objects.get()


def test_english_shopper_on_a_french_site_gets_an_english_order_and_email(
    english: Any, shop: str, product: Any
) -> None:
    order = buy(english, shop, product)
    body = english.inner_text("body")
    shot(english, "thank-you-en")
    # Placed during CMI's callback (no shopper request), in the shopper's language.
    assert order.shipping_method == "Free shipping"
    assert "Free shipping" in body
    assert "120.50\xa0MAD" in body  # Oscar's own amounts read like ours
    assert "Livraison gratuite" not in body
    assert wait_for(lambda: len(mail.outbox) == 1)
    assert mail.outbox[0].subject.startswith("Confirmation of order")
    assert Payment.objects.get().lang == "en"


def test_arabic_shop_is_right_to_left_with_an_arabic_order_and_email(
    arabic: Any, shop: str, product: Any
) -> None:
    arabic.goto(shop + product.get_absolute_url())
    assert arabic.get_attribute("html", "dir") == "rtl"
    # Oscar's stylesheet mirrored (Bootstrap 4 has no RTL build; the demo's rtlcss one):
    # text starts on the right, and the left/right utilities swap.
    assert "rtl.css" in arabic.get_attribute("link[rel=stylesheet]", "href")
    assert computed(arabic, "body", "textAlign") == "right"
    shot(arabic, "product-ar")
    product_page = arabic.inner_text("body")
    assert "In stock" not in product_page  # Oscar's own Arabic leaves these in English
    assert "Price (" not in product_page
    order = buy(arabic, shop, product, "ar")
    assert arabic.get_attribute("html", "dir") == "rtl"
    assert arabic.get_attribute("html", "lang") == "ar"
    shot(arabic, "thank-you-ar")
    assert computed(arabic, "body", "textAlign") == "right"
    assert computed(arabic, ".text-right", "textAlign") == "left"  # the totals' column
    heading = arabic.inner_text("h1")
    assert heading == f"الطلب {order.number}: تأكيد", heading
    body = arabic.inner_text("body")
    assert "Commande" not in body
    assert "Allocation" not in body
    assert order.shipping_method == "شحن مجاني"  # Oscar's Arabic "Free shipping"
    # The payment line's reference and amount inside the Arabic sentence are drawn whole
    # ("100002-1", not "-100002" then "1)").
    oid = Payment.objects.get().oid
    assert reads_left_to_right(arabic, "body", oid)
    assert reads_left_to_right(arabic, "body", "120.50\xa0MAD")
    assert wait_for(lambda: len(mail.outbox) == 1)
    assert mail.outbox[0].subject.startswith("تأكيد الطلب")


def test_void_from_the_french_dashboard_asks_first_and_the_order_tells_the_truth(
    english: Any, french_staff: Any, shop: str, product: Any, sandbox: Sandbox
) -> None:
    order = buy(english, shop, product)
    payment = Payment.objects.get()
    page = french_staff
    page.goto(shop + reverse("cmi_oscar_dashboard:cmi-payment-list"))
    row = page.inner_text("#cmi-payment-table")
    assert "120,50\xa0MAD" in row
    assert "autorisé" in row
    assert "(504)" not in row
    assert page.get_attribute(f"#cmi-payment-table a:text-is('{order.number}')", "href") == (
        reverse("dashboard:order-detail", kwargs={"number": order.number})
    )
    shot(page, "dashboard-list-fr")
    page.click(f"text={payment.oid}")
    assert page.inner_text("#cmi-amount") == "120,50\xa0MAD"
    # The label is a flex item of Bootstrap's inline form: its sentence stays one box, so
    # the space before the amount is kept (not "jusqu'à120,50 MAD").
    label = page.inner_text("label[for=capture-amount]")
    assert label == "Montant (jusqu'à 120,50\xa0MAD)", label
    assert page.inner_text("#cmi-void") == "Annuler l'autorisation…"
    shot(page, "dashboard-detail-fr")
    page.click("#cmi-void")
    text = page.inner_text("#cmi-confirm-text")
    assert "Annuler l'autorisation de 120,50\xa0MAD" in text
    shot(page, "dashboard-confirm-void-fr")
    assert sandbox.order(payment.oid).state == "PRE"  # nothing done yet
    page.click("#cmi-confirm-button")
    page.wait_for_selector("#cmi-state:text('autorisation annulée')")
    assert sandbox.order(payment.oid).state == "VOID"
    page.goto(shop + reverse("dashboard:order-detail", kwargs={"number": order.number}))
    page.click("a[href='#payment']")
    page.wait_for_selector("#payment.show.active")
    payment_tab = page.inner_text("#payment")
    shot(page, "order-after-void-fr")
    assert page.inner_text("#cmi-order-status") == "Annulée"  # "Cancelled", translated
    page.click("a[href='#notes']")
    page.wait_for_selector("#notes.show.active")
    notes = page.inner_text("#notes")
    shot(page, "order-after-void-notes-fr")
    assert "rien n'est prélevé sur la carte" in notes
    assert "120,50\xa0MAD" in notes
    source = Order.objects.get().sources.get()
    assert (source.amount_allocated, source.amount_debited) == (0, 0)
    assert "CMI\t0,00\xa0MAD\t0,00\xa0MAD" in payment_tab  # allocated, debited: nothing


def test_partial_capture_is_told_on_oscar_order_page(
    english: Any, french_staff: Any, shop: str, product: Any
) -> None:
    order = buy(english, shop, product)
    payment = Payment.objects.get()
    page = french_staff
    page.goto(shop + reverse("cmi_oscar_dashboard:cmi-payment-detail", args=[payment.pk]))
    page.fill("#capture-amount", "100")
    page.click("#cmi-capture")
    page.wait_for_selector("#cmi-captured:text('100,00\xa0MAD')")
    page.goto(shop + reverse("dashboard:order-detail", kwargs={"number": order.number}))
    page.click("a[href='#notes']")
    page.wait_for_selector("#notes.show.active")
    notes = page.inner_text("#notes")
    shot(page, "order-after-partial-capture-fr")
    assert "100,00\xa0MAD encaissés sur les 120,50\xa0MAD autorisés" in notes
    assert "20,50\xa0MAD" in notes


def test_arabic_dashboard_is_right_to_left_and_complete(
    english: Any, arabic_staff: Any, shop: str, product: Any
) -> None:
    buy(english, shop, product)
    payment = Payment.objects.get()
    page = arabic_staff
    page.goto(shop + reverse("cmi_oscar_dashboard:cmi-payment-detail", args=[payment.pk]))
    assert page.get_attribute("html", "dir") == "rtl"
    assert computed(page, "body", "textAlign") == "right"
    assert computed(page, ".navbar-toggler.float-right", "cssFloat") == "left"  # mirrored
    shot(page, "dashboard-detail-ar")
    assert page.inner_text("#cmi-state") == "مفوَّضة"  # "authorised"
    assert page.inner_text("#cmi-amount") == "120.50\xa0MAD"  # Babel's Arabic: Latin digits
    assert reads_left_to_right(page, "h1", payment.oid)  # "دفعة CMI 100001-1"
    assert reads_left_to_right(page, "#cmi-payment-summary", payment.masked_pan)
    assert page.inner_text("#cmi-void") == "إلغاء التفويض…"
    assert "الإجراءات" in page.inner_text("#cmi-payment")  # not Oscar's untranslated "Actions"
    summary = page.inner_text("#cmi-payment-summary")
    assert "manual" not in summary  # the capture mode by name, in Arabic


#: This project's catalogues for Oscar's dashboard: none of their English msgids may show.
CATALOGUES = [
    Path(__file__).resolve().parents[3] / f"adapters/{app}/locale/ar/LC_MESSAGES/django.po"
    for app in ("cmi_oscar", "cmi_django")
]


def test_arabic_dashboard_lists_are_right_to_left_and_complete(
    english: Any, arabic_staff: Any, shop: str, product: Any
) -> None:
    """The dashboard's CMI payments list and Oscar's order list, for a staff member whose
    browser asks for Arabic: right to left, Arabic column headers, the amount as money
    and the order id drawn whole; none of this project's English msgids shows."""
    order = buy(english, shop, product)
    payment = Payment.objects.get()
    msgids = english_msgids(*CATALOGUES)
    page = arabic_staff

    page.goto(shop + reverse("cmi_oscar_dashboard:cmi-payment-list"))
    shot(page, "dashboard-list-ar")
    assert page.get_attribute("html", "dir") == "rtl"
    headers = page.inner_text("table thead")
    assert "القيمة" in headers
    assert "الحالة" in headers
    assert "Amount" not in headers
    assert "State" not in headers
    assert reads_left_to_right(page, "table tbody", payment.oid)
    assert reads_left_to_right(page, "table tbody", "120.50\xa0MAD")
    assert english_left(page.inner_text("body"), msgids) == []

    page.goto(shop + reverse("dashboard:order-list"))
    shot(page, "dashboard-orders-ar")
    assert page.get_attribute("html", "dir") == "rtl"
    assert reads_left_to_right(page, "table tbody", order.number)
    assert "قيد الانتظار" in page.inner_text("table tbody")  # the status, "Pending"
    # The table (statuses this project names); Oscar's "change status" <select> below
    # lists the pipeline's raw status values, Oscar's template, not translated there.
    assert english_left(page.inner_text("table"), msgids) == []
