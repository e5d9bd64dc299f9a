"""The admin shows payments, callbacks and operations, and changes none of them."""

from __future__ import annotations

from typing import Any

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


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("fr", ("rappel du CMI", "accepté, encaissement demandé", "État")),
        ("ar", ("إشعار CMI", "مقبول، طُلب التحصيل", "الحالة")),
    ],
)
def test_the_logs_values_are_in_the_staff_language(
    client: Client, payment: Payment, settings: Any, lang: str, words: tuple[str, str, str]
) -> None:
    """The admin shows the log's kinds and outcomes translated, not raw values (issue 13)."""
    post_callback(client, callback_for(payment))
    User.objects.create_superuser("staff", "staff@example.ma", "pw")
    client.login(username="staff", password="pw")
    settings.LANGUAGE_CODE = lang  # these settings have no LocaleMiddleware: the site's language
    callbacks = client.get("/admin/cmi_django/callbacklog/").content.decode()
    kind, outcome, state = words
    assert kind in callbacks
    assert outcome in callbacks
    assert ">capture<" not in callbacks
    payments = client.get("/admin/cmi_django/payment/").content.decode()
    assert state in payments
