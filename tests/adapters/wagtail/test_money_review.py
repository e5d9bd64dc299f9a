"""The Wagtail admin's money-moving action, attacked: nothing moves without a POST, its
CSRF token, the ``change`` permission, a Wagtail payment and the confirmation step.

The payment is authorised in the shop and PRE at the emulator, with the API user set: the
last step of each test proves that the same request, made properly, does reach CMI (so
the refusals before it are the view's doing, not a missing configuration).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from cmi_django.models import Operation, Payment
from django.test import Client

from cmi_core.sandbox import Sandbox
from tests.adapters.django.conftest import authorised_at_cmi, sandbox_payments, untouched
from tests.adapters.django.test_money_once import ledger

AMOUNT = Decimal("120.50")
INDEX = "/admin/cmi_payments/"

pytestmark = pytest.mark.django_db


@pytest.fixture
def cmi(settings: Any, sandbox: Sandbox) -> Sandbox:
    settings.CMI_PAYMENTS = sandbox_payments(sandbox.base_url, capture_mode="manual")
    return sandbox


def authorised(sandbox: Sandbox, platform: str = "wagtail") -> Payment:
    data = {"page_id": 11, "page_title": "Don", "shopper": {"name": "A"}}
    return authorised_at_cmi(sandbox, platform=platform, reference="11", data=data)


def superuser(django_user_model: Any, **client: Any) -> Client:
    user = django_user_model.objects.create_superuser("boss", "boss@example.ma", "pw")
    logged = Client(**client)
    logged.force_login(user)
    return logged


def test_a_void_needs_post_csrf_permission_confirmation_and_a_wagtail_payment(
    cmi: Sandbox, django_user_model: Any
) -> None:
    payment = authorised(cmi)
    url = f"{INDEX}action/{payment.pk}/void/"
    form = {"confirmed": "1", "key": "void-1"}

    guarded = superuser(django_user_model, enforce_csrf_checks=True)
    assert guarded.post(url, form).status_code == 403  # no CSRF token: a forged form
    assert untouched(payment, cmi)

    admin = Client()
    admin.force_login(django_user_model.objects.get(username="boss"))
    assert admin.get(url).status_code == 405  # a link or an <img> moves nothing
    assert untouched(payment, cmi)

    page = admin.post(url, {"key": "void-1"})  # not confirmed: the confirmation page
    assert page.status_code == 200
    assert "cannot be undone" in page.content.decode() or "annul" in page.content.decode()
    assert untouched(payment, cmi)

    from django.contrib.auth.models import Permission

    editor = django_user_model.objects.create_user("editor", "e@example.ma", "pw")
    editor.user_permissions.add(Permission.objects.get(codename="access_admin"))
    other = Client()
    other.force_login(editor)
    assert other.post(url, form).status_code in (302, 403)  # no "change" permission
    assert untouched(payment, cmi)

    oscar = authorised(cmi, platform="oscar")
    response = admin.post(f"{INDEX}action/{oscar.pk}/void/", form)
    assert response.status_code == 404  # another platform's payment
    assert untouched(oscar, cmi)

    # the same request, made properly, reaches CMI once
    assert admin.post(url, form).status_code == 302
    assert admin.post(url, form).status_code == 302  # sent twice: one void
    payment.refresh_from_db()
    assert payment.state == "voided"
    assert ledger(cmi, payment.oid) == ["PreAuth", "Void"]
    assert Operation.objects.filter(payment=payment, kind="void").count() == 1
