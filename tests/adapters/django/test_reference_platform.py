"""docs/adding-a-platform.md's reference platform works, and the guide shows its code as is.

The platform (``tests/adapters/django/reference``) is a shop of one ``Order`` model: a
payment through the shared layer, CMI's callback, the shopper's return, a decline and a
staff flag each reach it as one :class:`~cmi_django.hooks.PaymentChange`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from cmi_django import services
from cmi_django.models import Payment
from django.test import Client

from tests.adapters.django.conftest import callback_for, post_callback
from tests.adapters.django.reference.hooks import PLATFORM
from tests.adapters.django.reference.models import Order

ROOT = Path(__file__).resolve().parents[3]
GUIDE = ROOT / "docs" / "adding-a-platform.md"
REFERENCE = "tests/adapters/django/reference"


def post_form(client: Client, path: str, fields: dict[str, str]) -> Any:
    return client.post(
        path, data=urlencode(fields), content_type="application/x-www-form-urlencoded"
    )


def start(client: Client, number: str = "A-1") -> tuple[Order, Payment, Any]:
    order = Order.objects.create(number=number, amount=Decimal("120.50"), email="a@example.ma")
    response = client.post(f"/shop/pay/{number}/")
    payment = Payment.objects.get(platform=PLATFORM, reference=number)
    return order, payment, response


@pytest.mark.django_db
def test_pay_answers_the_form_to_cmi_never_cached(client: Client) -> None:
    _, payment, response = start(client)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert f'name="oid" value="{payment.oid}"' in response.content.decode()
    assert client.get("/shop/pay/A-1/").status_code == 405


@pytest.mark.django_db
def test_callback_then_return_shows_the_paid_order(client: Client, csrf_client: Client) -> None:
    order, payment, _ = start(client)  # CMI's POSTs below come without a CSRF token
    fields = callback_for(payment)
    assert post_callback(csrf_client, fields).content == b"ACTION=POSTAUTH"
    order.refresh_from_db()
    assert order.status == Order.CAPTURED  # authorised then captured: one change, two effects
    response = post_form(csrf_client, "/shop/ok/", fields)
    assert response.status_code == 303
    page = csrf_client.get(response["Location"])
    assert page.content.decode() == "Order A-1: captured"


@pytest.mark.django_db
def test_forged_return_never_reaches_the_order(client: Client) -> None:
    _, payment, _ = start(client)
    fields = {**callback_for(payment), "HASH": "forged"}
    response = post_form(client, "/shop/ok/", fields)
    assert response.status_code == 303
    assert "/shop/order/" not in response["Location"]
    assert client.get("/shop/order/not-a-token/").status_code == 404


@pytest.mark.django_db
def test_decline_keeps_the_order_open_and_a_flag_asks_staff(client: Client) -> None:
    order, payment, _ = start(client)
    fields = callback_for(payment, approved=False, ErrMsg="Insufficient funds")
    post_callback(client, fields)
    order.refresh_from_db()
    assert (order.status, order.note) == (Order.NEW, "Insufficient funds")
    assert services.flag(payment, "looks odd")
    order.refresh_from_db()
    assert (order.status, order.note) == (Order.CHECK, "looks odd")


def guide_files() -> dict[str, str]:
    """``{path: code}`` of the guide's blocks headed ``<!-- file: <path> -->``."""
    text = GUIDE.read_text(encoding="utf-8")
    found = re.findall(r"<!-- file: (\S+) -->\n```python\n(.*?)```\n", text, flags=re.S)
    return dict(found)


def test_the_guide_shows_every_file_of_the_reference_platform_as_it_is() -> None:
    shown = guide_files()
    files = ["apps.py", "models.py", "hooks.py", "views.py", "urls.py"]
    assert sorted(shown) == sorted(f"{REFERENCE}/{name}" for name in files)
    for path, code in shown.items():
        assert code == (ROOT / path).read_text(encoding="utf-8"), path
