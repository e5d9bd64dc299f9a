"""The Oscar dashboard's money-moving action, attacked: nothing moves without a POST, its
CSRF token, a staff user, an Oscar payment and the confirmation step.

The payment is authorised in the shop and PRE at the emulator, with the API user set: the
last step proves that the same request, made properly, does reach CMI (so the refusals
before it are the view's doing, not a missing configuration).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from cmi_django.models import Operation, Payment
from django.test import Client
from django.urls import reverse

from cmi_core.sandbox import Sandbox
from tests.adapters.django.conftest import authorised_at_cmi, untouched
from tests.adapters.django.test_money_once import ledger
from tests.adapters.oscar.conftest import sandbox_payments

AMOUNT = Decimal("120.50")

pytestmark = pytest.mark.django_db


def authorised(sandbox: Sandbox, platform: str = "oscar") -> Payment:
    return authorised_at_cmi(sandbox, platform=platform, reference="100099")


def test_a_void_needs_post_csrf_staff_confirmation_and_an_oscar_payment(
    settings: Any, sandbox: Sandbox, django_user_model: Any
) -> None:
    settings.CMI_PAYMENTS = sandbox_payments(sandbox.base_url, capture_mode="manual")
    payment = authorised(sandbox)
    url = reverse("cmi_oscar_dashboard:cmi-payment-action", args=[payment.pk, "void"])
    form = {"confirmed": "1", "key": "void-1"}
    user = django_user_model.objects.create_user("staff", "s@example.ma", "pw", is_staff=True)

    guarded = Client(enforce_csrf_checks=True)
    guarded.force_login(user)
    assert guarded.post(url, form).status_code == 403  # no CSRF token: a forged form
    assert untouched(payment, sandbox)

    staff = Client()
    staff.force_login(user)
    assert staff.get(url).status_code == 405  # a link or an <img> moves nothing
    assert untouched(payment, sandbox)

    page = staff.post(url, {"key": "void-1"})  # not confirmed: the confirmation page
    assert page.status_code == 200
    assert 'name="confirmed"' in page.content.decode()
    assert untouched(payment, sandbox)

    customer = django_user_model.objects.create_user("c", "c@example.ma", "pw")
    shopper = Client()
    shopper.force_login(customer)
    assert shopper.post(url, form).status_code in (302, 403)  # not staff
    assert untouched(payment, sandbox)

    other = authorised(sandbox, platform="wagtail")
    other_url = reverse("cmi_oscar_dashboard:cmi-payment-action", args=[other.pk, "void"])
    assert staff.post(other_url, form).status_code == 404  # another platform's payment
    assert untouched(other, sandbox)

    # the same request, made properly, reaches CMI once
    assert staff.post(url, form).status_code == 302
    assert staff.post(url, form).status_code == 302  # sent twice: one void
    payment.refresh_from_db()
    assert payment.state == "voided"
    assert ledger(sandbox, payment.oid) == ["PreAuth", "Void"]
    assert Operation.objects.filter(payment=payment, kind="void").count() == 1
