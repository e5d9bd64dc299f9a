"""The payment page type: where it may be created, what editors may set, what payers may type."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from cmi_django.models import Payment
from cmi_wagtail.forms import ShopperForm
from cmi_wagtail.models import PaymentPage
from django.core.exceptions import ValidationError
from django.test import Client
from wagtail.models import Locale, Page, Site
from wagtail.test.utils import WagtailPageTestCase

from tests.adapters.wagtail.testapp.models import ArticlePage, HomePage

pytestmark = pytest.mark.django_db


class TestPageTree(WagtailPageTestCase):
    """Creation rules as Wagtail's page test case checks them."""

    def test_payment_page_can_go_under_any_page(self) -> None:
        self.assertCanCreateAt(HomePage, PaymentPage)
        self.assertCanCreateAt(ArticlePage, PaymentPage)
        self.assertCanCreateAt(Page, PaymentPage)

    def test_payment_page_has_no_children(self) -> None:
        self.assertAllowedSubpageTypes(PaymentPage, [])
        self.assertCanNotCreateAt(PaymentPage, HomePage)
        self.assertCanNotCreateAt(PaymentPage, PaymentPage)

    def test_routes_exist(self) -> None:
        Locale.objects.get_or_create(language_code="fr")
        root = Page.get_first_root_node() or Page.add_root(instance=Page(title="R", slug="r"))
        home = root.add_child(instance=HomePage(title="H", slug="h"))
        Site.objects.update_or_create(
            is_default_site=True, defaults={"root_page": home, "hostname": "localhost"}
        )
        page = home.add_child(instance=PaymentPage(title="P", slug="p", fixed_amount=Decimal("10")))
        for route in ("/", "/thank-you/", "/failure/", "/cancel/"):
            self.assertPageIsRoutable(page, route)


# Editor's rules ----------------------------------------------------------------------------


def rules(**values: Any) -> PaymentPage:
    base: dict[str, Any] = {"title": "P", "slug": "p", "amount_rule": "fixed"}
    base.update(values)
    return PaymentPage(**base)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"amount_rule": "fixed", "fixed_amount": None}, "fixed_amount"),
        ({"amount_rule": "fixed", "fixed_amount": Decimal("10.005")}, "fixed_amount"),
        ({"amount_rule": "fixed", "fixed_amount": Decimal("0")}, "fixed_amount"),
        ({"amount_rule": "choices", "preset_amounts": ""}, "preset_amounts"),
        ({"amount_rule": "choices", "preset_amounts": "100 abc"}, "preset_amounts"),
        (
            {"amount_rule": "free", "min_amount": Decimal(500), "max_amount": Decimal(100)},
            "max_amount",
        ),
    ],
)
def test_page_rules_refused(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        rules(**values).clean()
    assert field in caught.value.message_dict


def test_page_rules_accepted() -> None:
    rules(fixed_amount=Decimal("99.99")).clean()
    rules(amount_rule="choices", preset_amounts="50 100, 250.50").clean()
    rules(amount_rule="free", min_amount=Decimal(10), max_amount=Decimal(1000)).clean()
    assert rules(preset_amounts="50 100, 250.50").amount_choices() == [
        Decimal(50),
        Decimal(100),
        Decimal("250.50"),
    ]


# The payer's form ---------------------------------------------------------------------------


def payer(**values: str) -> dict[str, str]:
    base = {"name": "Amina Test", "email": "amina@example.ma"}
    base.update(values)
    return base


@pytest.mark.parametrize(
    ("amount", "valid"),
    [("9.99", False), ("10", True), ("500.50", True), ("1000", True), ("1000.01", False),
     ("12.345", False), ("-5", False), ("abc", False), ("", False)],
)  # fmt: skip
def test_free_amount_bounds(amount: str, valid: bool) -> None:
    page = rules(amount_rule="free", min_amount=Decimal(10), max_amount=Decimal(1000))
    form = ShopperForm(payer(amount=amount), page=page)
    assert form.is_valid() is valid, form.errors
    if valid:
        assert form.chosen_amount() == Decimal(amount)
    else:
        assert "amount" in form.errors


def test_preset_amounts_only() -> None:
    page = rules(amount_rule="choices", preset_amounts="100 200")
    assert ShopperForm(payer(amount="200"), page=page).is_valid()
    form = ShopperForm(payer(amount="150"), page=page)
    assert not form.is_valid()
    assert "amount" in form.errors


def test_fixed_amount_ignores_a_posted_amount() -> None:
    form = ShopperForm(payer(amount="1"), page=rules(fixed_amount=Decimal("150")))
    assert form.is_valid()
    assert form.chosen_amount() == Decimal("150")
    assert "amount" not in form.fields


def test_required_fields_follow_the_page() -> None:
    page = rules(fixed_amount=Decimal(10), ask_phone=True, ask_address=True)
    form = ShopperForm({"email": "not-an-email"}, page=page)
    assert not form.is_valid()
    assert set(form.errors) == {"name", "email", "phone", "street", "city", "postal_code"}
    form = ShopperForm(payer(phone="abc"), page=page)
    assert not form.is_valid()
    assert "phone" in form.errors
    anonymous = rules(fixed_amount=Decimal(10), ask_name=False)
    form = ShopperForm({"email": "a@example.ma"}, page=anonymous)
    assert form.is_valid(), form.errors
    assert form.shopper() == {"email": "a@example.ma"}


def test_invalid_post_creates_no_payment(
    pay_page: PaymentPage, make_page: Callable[..., PaymentPage], client: Client
) -> None:
    free = make_page(amount_rule="free", min_amount=Decimal(10), max_amount=Decimal(100))
    response = client.post(free.url, {"name": "A", "email": "a@example.ma", "amount": "500"})
    assert response.status_code == 200
    assert "amount" in response.context["form"].errors
    assert Payment.objects.count() == 0


def test_page_renders_the_form(pay_page: PaymentPage, client: Client) -> None:
    response = client.get(pay_page.url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="email"' in html
    assert "150,00\xa0MAD" in html  # money in the page's language (French)
    assert 'lang="fr"' in html
