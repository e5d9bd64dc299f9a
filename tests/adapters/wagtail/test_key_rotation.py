"""A site's CMI settings across a key rotation (issue #11, item 5): the payment page shows
the generic technical error (never a 500) and logs the setting to fix, without the
secret; ``cmi_rotate_secrets`` finds and re-encrypts the site settings' secrets."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from cmi_django.models import Payment
from cmi_wagtail.models import CMISettings, PaymentPage
from django.core.management import call_command
from django.test import Client

from cmi_core.sandbox import DEFAULT_MERCHANT

from .conftest import STORE_KEY

pytestmark = pytest.mark.django_db

SHOPPER = {"name": "Amina Test", "email": "amina@example.ma"}


def test_a_wrong_key_shows_the_technical_error(
    pay_page: PaymentPage, client: Client, settings: Any, caplog: Any
) -> None:
    settings.CMI_ENCRYPTION_KEY = None
    settings.SECRET_KEY = "a-new-secret-key-nobody-told-the-site-about"
    with caplog.at_level(logging.INFO):
        shown = client.get(pay_page.url)
        posted = client.post(pay_page.url, SHOPPER)
    assert shown.status_code == 200
    assert posted.status_code == 503
    assert Payment.objects.count() == 0
    logged = "\n".join(r.getMessage() + str(r.exc_info and r.exc_info[1]) for r in caplog.records)
    assert "SECRET_KEY_FALLBACKS" in logged
    assert STORE_KEY not in logged
    assert DEFAULT_MERCHANT.api_password not in logged
    assert STORE_KEY not in posted.content.decode()


def test_rotation_keeps_the_site_settings(
    pay_page: PaymentPage, client: Client, settings: Any
) -> None:
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "the-2026-site-secret-key"
    settings.SECRET_KEY_FALLBACKS = [old_key]
    out = io.StringIO()
    call_command("cmi_rotate_secrets", stdout=out, stderr=io.StringIO())
    assert "cmi_wagtail.CMISettings.store_key: 1 value(s), 1 re-encrypted" in out.getvalue()
    assert "cmi_wagtail.CMISettings.api_password: 1 value(s), 1 re-encrypted" in out.getvalue()
    settings.SECRET_KEY_FALLBACKS = []
    assert CMISettings.objects.get().store_key == STORE_KEY
    assert client.post(pay_page.url, SHOPPER).status_code == 200
    assert Payment.objects.count() == 1


def test_site_settings_under_a_wrong_key_are_none(
    pay_page: PaymentPage, settings: Any, caplog: Any
) -> None:
    """Pages in a language CMI lacks read the site's default language: a wrong key
    makes it French, not a 500."""
    from cmi_wagtail.checkout import site_settings

    assert site_settings(pay_page) is not None
    settings.CMI_ENCRYPTION_KEY = None
    settings.SECRET_KEY = "a-new-secret-key-nobody-told-the-site-about"
    with caplog.at_level(logging.ERROR):
        assert site_settings(pay_page) is None
    assert "SECRET_KEY_FALLBACKS" in caplog.text
    assert STORE_KEY not in caplog.text
