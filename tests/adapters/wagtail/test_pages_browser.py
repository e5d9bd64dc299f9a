"""What payers and staff see on Wagtail, in a real browser (issue #13): the admin's list
and detail in French with money, labels and local times; the confirmation step before a
void and a full refund, with no pre-filled refund; the thank-you page's way back and its
word about the receipt; the phone field's keypad.

Screenshots go to ``$CMI_SCREENSHOTS`` when it is set (nothing is written otherwise).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cmi_django.models import Payment
from cmi_wagtail.models import PaymentPage
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import override

from cmi_core.sandbox import Sandbox
from tests.adapters.bidi import english_left, english_msgids, reads_left_to_right

from .conftest import configure
from .test_admin import INDEX, act, pay_through_sandbox  # noqa: F401 - a fixture
from .test_browser import APPROVED, back_to_shop, fill_shopper, pay_card, shop  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shot(page: Any, name: str) -> None:
    folder = os.environ.get("CMI_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"wagtail-{name}.png"), full_page=True)


@pytest.fixture
def staff_page(page: Any, admin_client: Any, live_server: Any) -> Any:
    cookie = admin_client.cookies["sessionid"].value
    page.context.add_cookies([{"name": "sessionid", "value": cookie, "url": live_server.url}])
    page.set_viewport_size({"width": 1200, "height": 900})
    return page


def test_french_admin_list_and_inspect_read_as_money_and_local_time(
    staff_page: Any,
    pay_through_sandbox: Callable[..., Payment],  # noqa: F811
    live_server: Any,
) -> None:
    payment = pay_through_sandbox()
    page = staff_page
    page.goto(f"{live_server.url}{INDEX}")
    headers = page.locator("table.listing thead").inner_text()
    shot(page, "list-fr")
    assert "N° de commande CMI" in headers
    assert "Montant" in headers
    assert "État" in headers
    assert "Oid" not in headers
    row = page.locator("table.listing tbody").inner_text()
    assert "150,00\xa0MAD" in row
    assert "autorisé" in row
    page.goto(f"{live_server.url}{INDEX}inspect/{payment.pk}/")
    shot(page, "inspect-fr")
    body = page.inner_text("main")
    assert "150,00\xa0MAD" in body
    assert "150.000" not in body
    assert "partially_refunded" not in body
    with override("fr"):
        local = date_format(timezone.localtime(payment.created_at), "DATETIME_FORMAT")
    assert local in body  # the site's time zone, not UTC


def test_void_and_full_refund_ask_first_and_nothing_is_prefilled(
    staff_page: Any,
    pay_through_sandbox: Callable[..., Payment],  # noqa: F811
    live_server: Any,
    sandbox: Sandbox,
) -> None:
    page = staff_page
    voided = pay_through_sandbox()
    page.goto(f"{live_server.url}{INDEX}inspect/{voided.pk}/")
    page.click("#cmi-void")
    text = page.inner_text("#cmi-confirm-text")
    shot(page, "confirm-void-fr")
    assert "Annuler l'autorisation de 150,00\xa0MAD" in text
    assert sandbox.order(voided.oid).state == "PRE"  # nothing done before confirmation
    page.click("#cmi-confirm-button")
    page.wait_for_url(f"**{INDEX}inspect/{voided.pk}/")
    assert sandbox.order(voided.oid).state == "VOID"

    refunded = pay_through_sandbox()
    act_capture = page.goto(f"{live_server.url}{INDEX}inspect/{refunded.pk}/")
    assert act_capture is not None
    page.click("form[data-cmi-action=capture] button")
    page.wait_for_selector("#cmi-refund-amount")
    assert page.input_value("#cmi-refund-amount") == ""  # no pre-filled full amount
    shot(page, "inspect-captured-fr")
    page.click("#cmi-refund")  # empty: the browser does not send it (required)
    assert page.evaluate("document.querySelector('#cmi-refund-amount').validity.valueMissing")
    page.fill("#cmi-refund-amount", "150")
    page.click("#cmi-refund")
    text = page.inner_text("#cmi-confirm-text")
    shot(page, "confirm-refund-fr")
    assert "Rembourser 150,00\xa0MAD" in text
    assert sandbox.order(refunded.oid).state == "POST"
    page.click("#cmi-confirm-button")
    page.wait_for_url(f"**{INDEX}inspect/{refunded.pk}/")
    assert sandbox.order(refunded.oid).state == "RFND"


def test_csv_has_two_decimals_and_local_seconds(
    admin_client: Any,
    pay_through_sandbox: Callable[..., Payment],  # noqa: F811
) -> None:
    payment = pay_through_sandbox()
    csv = b"".join(admin_client.get(f"{INDEX}?export=csv").streaming_content).decode()
    header, row = csv.splitlines()[:2]
    assert header.startswith("N° de commande CMI,Créé le,État,Montant")
    local = timezone.localtime(payment.created_at).strftime("%Y-%m-%d %H:%M:%S")
    assert row.startswith(f"{payment.oid},{local},autorisé,150.00,MAD")


def test_thank_you_page_links_back_and_tells_about_the_receipt(
    page: Any,
    shop: Callable[..., tuple[str, PaymentPage]],  # noqa: F811
) -> None:
    url, _ = shop(ask_phone=True, amount_rule="fixed", fixed_amount=Decimal("120.00"))
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(url)
    assert page.get_attribute("#id_phone", "type") == "tel"  # the phone's numeric keypad
    assert "120,00\xa0MAD" in page.inner_text("body")
    fill_shopper(page, url, phone="0612345678")
    pay_card(page, APPROVED)
    back_to_shop(page)
    shot(page, "thank-you-fr-phone")
    body = page.inner_text("body")
    assert "120,00\xa0MAD" in body  # the same money as on the form
    assert "preuve de paiement" in body
    assert page.locator("[data-cmi-home]").count() == 1


def test_arabic_thank_you_page_draws_amount_and_reference_whole(
    page: Any,
    shop: Callable[..., tuple[str, PaymentPage]],  # noqa: F811
) -> None:
    """Right to left, "wagtail-271894872732" and "120.00 MAD" inside Arabic lines are
    drawn whole, left to right (<bdi>), and the labels keep their Arabic colon."""
    url, _ = shop(locale="ar", slug="tabarru", amount_rule="fixed", fixed_amount=Decimal(120))
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    fill_shopper(page, url)
    pay_card(page, APPROVED)
    back_to_shop(page)
    shot(page, "thank-you-ar-phone")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    payment = Payment.objects.get()
    assert reads_left_to_right(page, "[data-cmi-reference]", payment.oid)
    assert reads_left_to_right(page, "[data-cmi-amount]", "120.00\xa0MAD")
    assert "المرجع:" in page.inner_text("body")


def test_the_credentials_can_be_tested_from_the_settings_page(
    staff_page: Any,
    live_server: Any,
    sandbox: Sandbox,
    site: Any,
) -> None:
    configure(site, base_url=sandbox.base_url)
    page = staff_page
    settings_url = reverse("wagtailsettings:edit", args=["cmi_wagtail", "cmisettings", site.pk])
    page.goto(f"{live_server.url}{settings_url}")
    shot(page, "settings-fr")
    page.click("#cmi-test-credentials-button")  # the stored (right) credentials
    result = page.locator("#cmi-credentials-result")
    assert result.get_attribute("data-ok") == "true"
    key = page.locator("#cmi-store-key-result")  # checked at the emulator's gateway
    assert key.get_attribute("data-verdict") == "right"
    assert "a accepté la clé de magasin" in key.inner_text()
    shot(page, "credentials-ok-fr")
    page.goto(f"{live_server.url}{settings_url}")
    page.fill("#id_store_key", "UnMauvaisSecret9")  # typed, not saved
    page.click("#cmi-test-credentials-button")
    key = page.locator("#cmi-store-key-result")
    assert key.get_attribute("data-verdict") == "wrong"
    assert "3D-1004" in key.inner_text()
    assert "UnMauvaisSecret9" not in page.content()
    shot(page, "credentials-wrong-key-fr")
    page.goto(f"{live_server.url}{settings_url}")
    page.fill("#id_api_password", "a-wrong-password")  # typed, not saved
    page.click("#cmi-test-credentials-button")
    result = page.locator("#cmi-credentials-result")
    assert result.get_attribute("data-ok") == "false"
    assert "CORE-2001" in result.inner_text()
    assert "a-wrong-password" not in page.content()
    shot(page, "credentials-refused-fr")


def test_the_page_editor_shows_the_amount_fields_of_the_chosen_rule(
    staff_page: Any, live_server: Any, site: Any
) -> None:
    page = staff_page
    add = reverse("wagtailadmin_pages:add", args=["cmi_wagtail", "paymentpage", site.root_page.pk])
    page.goto(f"{live_server.url}{add}")
    page.wait_for_selector("#id_amount_rule")
    assert page.is_visible("#id_fixed_amount")  # the default rule: a fixed amount
    assert not page.is_visible("#id_preset_amounts")
    assert not page.is_visible("#id_min_amount")
    page.select_option("#id_amount_rule", "free")
    assert page.is_visible("#id_min_amount")
    assert page.is_visible("#id_max_amount")
    assert not page.is_visible("#id_fixed_amount")
    shot(page, "editor-free-amount-fr")


#: This project's catalogues for the Wagtail admin: none of their English msgids may show.
CATALOGUES = [
    Path(__file__).resolve().parents[3] / f"adapters/{app}/locale/ar/LC_MESSAGES/django.po"
    for app in ("cmi_wagtail", "cmi_django")
]


def shown(page: Any) -> str:
    """The page's text without the payer's name ("Amina Test": data, not a label)."""
    return str(page.inner_text("body")).replace("Amina Test", "")


def test_arabic_admin_is_right_to_left_and_complete(  # noqa: PLR0917 - fixtures
    staff_page: Any,
    admin_user: Any,
    pay_through_sandbox: Callable[..., Payment],  # noqa: F811
    live_server: Any,
    sandbox: Sandbox,
    site: Any,
) -> None:
    """A staff member whose admin language is Arabic (their Wagtail profile): the payments
    list, the inspect view, the void confirmation and the CMI settings are right to left,
    in Arabic, the amount as money and the order id drawn whole; none of this project's
    English msgids shows."""
    from wagtail.users.models import UserProfile

    profile = UserProfile.get_for_user(admin_user)
    profile.preferred_language = "ar"
    profile.save()
    english = english_msgids(*CATALOGUES)
    payment = pay_through_sandbox()
    page = staff_page

    page.goto(f"{live_server.url}{INDEX}")
    shot(page, "list-ar")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    assert page.evaluate("document.documentElement.lang") == "ar"
    headers = page.locator("table.listing thead").inner_text()
    assert "المبلغ" in headers  # "Amount"
    assert "Amount" not in headers
    assert "Oid" not in headers
    assert reads_left_to_right(page, "table.listing tbody", payment.oid)
    assert reads_left_to_right(page, "table.listing tbody", "150.00\xa0MAD")
    assert english_left(shown(page), english) == []

    page.goto(f"{live_server.url}{INDEX}inspect/{payment.pk}/")
    shot(page, "inspect-ar")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    body = page.inner_text("main")
    assert "150.000" not in body
    assert "authorized" not in body
    assert reads_left_to_right(page, "main", "150.00\xa0MAD")
    assert english_left(shown(page), english) == []

    page.click("#cmi-void")
    shot(page, "confirm-void-ar")
    text = page.inner_text("#cmi-confirm-text")
    assert reads_left_to_right(page, "#cmi-confirm-text", "150.00\xa0MAD")
    assert english_left(text, english) == []
    latin = text.replace("MAD", "").replace(payment.oid, "")
    assert not any(c.isascii() and c.isalpha() for c in latin)  # Arabic but for those
    assert sandbox.order(payment.oid).state == "PRE"  # nothing done before confirmation

    settings_url = reverse("wagtailsettings:edit", args=["cmi_wagtail", "cmisettings", site.pk])
    page.goto(f"{live_server.url}{settings_url}")
    shot(page, "settings-ar")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    assert english_left(shown(page), english) == []


def test_the_lists_sidebar_and_shortcuts_work_as_wagtails(
    staff_page: Any, live_server: Any
) -> None:
    """The payments list drawn through cmi_wagtail_chrome (its sidebar JSON and keyboard
    dialog kept): Wagtail's scripts draw the sidebar from it (the menu's items, the
    payments item among them) and open the keyboard dialog, on the first page and on the
    next one (read from what was kept), as on Wagtail's own users list."""
    for url in (INDEX, INDEX, "/admin/users/"):
        page = staff_page
        page.goto(f"{live_server.url}{url}")
        sidebar = page.locator("#wagtail-sidebar")
        sidebar.locator("a[href='/admin/cmi_payments/']").wait_for()
        assert "sidebar-loading" not in (sidebar.get_attribute("class") or "")
        page.keyboard.press("?")
        page.locator("#keyboard-shortcuts-dialog").get_by_role("table").wait_for()
        page.keyboard.press("Escape")
