"""System checks of the Oscar adapter (issue #11, item 5): the wiring mistakes that were
silent, Oscar's stock checkout without CMI's payment step and an unmounted callback."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks

urlpatterns: list[Any] = []  # a URLconf without cmi_oscar.urls


# Model checks ask the database what it supports (JSONField on Django 6.1).
pytestmark = pytest.mark.django_db


def ids() -> set[str]:
    return {m.id for m in checks.run_checks() if m.id}


def test_the_test_settings_pass_every_check() -> None:
    assert [m for m in checks.run_checks() if m.is_serious()] == []


def test_stock_checkout_without_the_cmi_payment_step_is_an_error(settings: Any) -> None:
    assert "cmi_oscar.E001" not in ids()
    settings.INSTALLED_APPS = [
        "oscar.apps.checkout.apps.CheckoutConfig" if app.startswith("cmi_oscar.checkout") else app
        for app in settings.INSTALLED_APPS
    ]
    found = [m for m in checks.run_checks() if m.id == "cmi_oscar.E001"]
    assert len(found) == 1
    assert found[0].level == checks.ERROR
    assert "cmi_oscar.checkout.apps.CheckoutConfig" in (found[0].hint or "")


def test_unmounted_callback_is_an_error(settings: Any) -> None:
    assert "cmi_oscar.E002" not in ids()
    settings.ROOT_URLCONF = "tests.adapters.oscar.test_checks"
    found = ids()
    assert "cmi_oscar.E002" in found
    assert "cmi_django.E006" in found
