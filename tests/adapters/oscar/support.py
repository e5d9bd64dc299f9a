"""Helpers of the Oscar adapter's tests: a catalogue, a guest checkout, CMI's form."""

from __future__ import annotations

from decimal import Decimal
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

from cmi_django.models import Payment
from django.conf import settings
from django.test import Client
from django.urls import reverse
from oscar.core.loading import get_model
from oscar.core.thumbnails import AbstractThumbnailer

from cmi_core.testing import make_callback

STORE_KEY = "TEST-STORE-KEY-0001"
PRICE = Decimal("120.50")


class _Image:
    def __init__(self, url: str) -> None:
        self.url = url


class PlainThumbnailer(AbstractThumbnailer):
    """Images as they are: the tests need no sorl-thumbnail."""

    def generate_thumbnail(self, source: Any, **opts: Any) -> _Image:
        return _Image(getattr(source, "url", None) or f"{settings.STATIC_URL}missing.jpg")

    def delete_thumbnails(self, source: Any) -> None:
        return None


def create_product(
    title: str = "Tajine", price: Decimal = PRICE, stock: int = 10, upc: str = "TAJ-1"
) -> Any:
    product_class, _ = get_model("catalogue", "ProductClass").objects.get_or_create(
        name="Artisanat", defaults={"requires_shipping": True, "track_stock": True}
    )
    partner, _ = get_model("partner", "Partner").objects.get_or_create(name="Souk")
    product = get_model("catalogue", "Product").objects.create(
        title=title, upc=upc, product_class=product_class, structure="standalone"
    )
    product.stockrecords.create(
        partner=partner,
        partner_sku=upc,
        price_currency="MAD",
        price=price,
        num_in_stock=stock,
    )
    return product


def create_country() -> Any:
    country, _ = get_model("address", "Country").objects.get_or_create(
        iso_3166_1_a2="MA",
        defaults={
            "iso_3166_1_a3": "MAR",
            "iso_3166_1_numeric": "504",
            "printable_name": "Maroc",
            "name": "Morocco",
            "is_shipping_country": True,
        },
    )
    return country


def fill_basket(client: Client, product: Any, quantity: int = 1) -> None:
    response = client.post(reverse("basket:add", kwargs={"pk": product.pk}), {"quantity": quantity})
    assert response.status_code == 302, response.content[:500]


def guest_checkout_to_preview(client: Client, email: str = "amina@example.ma") -> None:
    """Guest e-mail, shipping address, (free) shipping method: the preview page is next."""
    response = client.post(reverse("checkout:index"), {"username": email, "options": "anonymous"})
    assert response.status_code == 302, response.content[:800]
    address_to_preview(client)


def address_to_preview(client: Client) -> None:
    """Shipping address and (free) shipping method: the preview page is next."""
    response = client.post(
        reverse("checkout:shipping-address"),
        {
            "first_name": "Amina",
            "last_name": "Test",
            "line1": "12 rue Tarik",
            "line4": "Casablanca",
            "postcode": "20000",
            "phone_number": "+212600000000",
        },
    )
    assert response.status_code == 302, response.content[:800]
    response = client.get(reverse("checkout:shipping-method"))
    assert response.status_code == 302, response.content[:800]


def place_order(client: Client) -> Any:
    """POST "Place order" on the preview page; returns the response (CMI's form)."""
    return client.post(reverse("checkout:preview"), {"action": "place_order"})


def start_payment(
    client: Client, product: Any, quantity: int = 1
) -> tuple[Payment, dict[str, str]]:
    """Basket to CMI's form: the payment stored and the signed fields the form carries."""
    fill_basket(client, product, quantity)
    guest_checkout_to_preview(client)
    response = place_order(client)
    assert response.status_code == 200, response.content[:800]
    _, fields = form_of(response.content.decode())
    payment = Payment.objects.get(oid=fields["oid"])
    return payment, fields


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.action = values.get("action") or ""
        if tag == "input" and values.get("name"):
            self.fields[values["name"] or ""] = values.get("value") or ""


def form_of(html: str) -> tuple[str, dict[str, str]]:
    """The action and the hidden fields of the auto-submitting form."""
    parser = _FormParser()
    parser.feed(html)
    return parser.action, parser.fields


def callback_for(
    payment: Payment, request_fields: dict[str, str] | None = None, **kwargs: Any
) -> dict[str, str]:
    kwargs.setdefault("amount", payment.amount)
    kwargs.setdefault("oid", payment.oid)
    fields = payment.request_fields if request_fields is None else request_fields
    return make_callback(STORE_KEY, request_fields=fields, **kwargs)


def post_form(client: Client, url: str, fields: dict[str, str]) -> Any:
    return client.post(
        url, data=urlencode(fields), content_type="application/x-www-form-urlencoded"
    )
