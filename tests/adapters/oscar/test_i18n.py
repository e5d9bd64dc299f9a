"""The shopper's pages in French and Arabic (right to left), and CMI's page language."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.adapters.oscar.support import fill_basket, form_of, guest_checkout_to_preview

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("lang", "direction", "title", "button"),
    [
        ("en", "ltr", "Payment by card", "Pay by card"),
        ("fr", "ltr", "Paiement par carte", "Payer par carte"),
        ("ar", "rtl", "الدفع بالبطاقة", "ادفع بالبطاقة"),
    ],
)
def test_payment_step_is_translated(
    product: Any, lang: str, direction: str, title: str, button: str
) -> None:
    shopper = Client(headers={"accept-language": lang})
    fill_basket(shopper, product)
    guest_checkout_to_preview(shopper)
    details = shopper.get(reverse("checkout:payment-details")).content.decode()
    assert title in details
    assert f'id="cmi-payment-details" dir="{direction}"' in details
    preview = shopper.get(reverse("checkout:preview")).content.decode()
    assert button in preview
    response = shopper.post(reverse("checkout:preview"), {"action": "place_order"})
    html = response.content.decode()
    _, fields = form_of(html)
    assert fields["lang"] == lang  # CMI's page in the shopper's language
    assert f'dir="{direction}"' in html
