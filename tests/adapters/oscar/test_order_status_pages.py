"""Oscar's order status, translated wherever the demo shop shows it (issue #13): the
customer's order page, the guest's order page the thank-you page links to, the dashboard's
order list and customer page. The pipeline's names ("Cancelled") are English text stored on
the order; the demo's same-name template overrides pass them through ``order_status``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from oscar.test.factories import create_order

DEMO = Path(__file__).resolve().parents[3] / "examples/oscar_shop"

pytestmark = pytest.mark.django_db

CANCELLED = {"fr": "Annulée", "ar": "ملغى"}


@pytest.fixture
def demo_templates(settings: Any) -> None:
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(DEMO / "oscar_shop/templates")]}]


@pytest.fixture
def customer(django_user_model: Any) -> Any:
    """A customer with orders, who is also staff (one login for both sides)."""
    return django_user_model.objects.create_user(
        "amina", "amina@example.ma", "pw", is_staff=True, is_superuser=True
    )


def cancelled(**fields: Any) -> Any:
    order = create_order(**fields)
    order.status = "Cancelled"
    order.save(update_fields=["status"])
    return order


def cells(html: str) -> list[str]:
    """The text of every table cell and paragraph, tags dropped."""
    found = re.findall(r"<(?:td|p)[^>]*>(.*?)</(?:td|p)>", html, re.S)
    return [re.sub(r"<[^>]+>|\s+", " ", cell).strip() for cell in found]


def page(client: Client, url: str, language: str) -> list[str]:
    response = client.get(url, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    assert f'lang="{language}"' in response.content.decode()
    return cells(response.content.decode())


@pytest.mark.usefixtures("demo_templates")
@pytest.mark.parametrize("language", ["fr", "ar"])
def test_status_is_translated_on_every_order_page(language: str, customer: Any) -> None:
    order = cancelled(user=customer)
    guest = cancelled(guest_email="guest@example.ma")
    client = Client()
    client.force_login(customer)
    session = client.session
    session["anon_order_email"] = "guest@example.ma"  # what Oscar's order-status form keeps
    session.save()
    urls = {
        "customer's order page": reverse("customer:order", kwargs={"order_number": order.number}),
        "guest's order page": reverse(
            "customer:anon-order",
            kwargs={"order_number": guest.number, "hash": guest.verification_hash()},
        ),
        "dashboard order list": reverse("dashboard:order-list"),
        "dashboard customer page": reverse("dashboard:user-detail", kwargs={"pk": customer.pk}),
    }
    for name, url in urls.items():
        texts = page(client, url, language)
        assert CANCELLED[language] in texts, (name, texts)
        assert "Cancelled" not in texts, name
