"""The admin shows payments, callbacks and operations, and changes none of them."""

from __future__ import annotations

import pytest
from cmi_django.models import Payment
from django.contrib.auth.models import User
from django.test import Client

from .conftest import callback_for, post_callback

pytestmark = pytest.mark.django_db


def test_admin_is_read_only(client: Client, payment: Payment) -> None:
    post_callback(client, callback_for(payment))
    User.objects.create_superuser("staff", "staff@example.ma", "pw")
    client.login(username="staff", password="pw")
    listing = client.get("/admin/cmi_django/payment/")
    assert listing.status_code == 200
    assert payment.oid in listing.content.decode()
    detail = client.get(f"/admin/cmi_django/payment/{payment.pk}/change/")
    assert detail.status_code == 200
    assert "ACTION=POSTAUTH" in detail.content.decode()  # the callback inline
    assert client.get("/admin/cmi_django/payment/add/").status_code == 403
    assert client.post(f"/admin/cmi_django/payment/{payment.pk}/delete/").status_code == 403
    assert client.get("/admin/cmi_django/callbacklog/").status_code == 200
    assert client.get("/admin/cmi_django/operation/").status_code == 200
