"""System checks of the Wagtail adapter (issue #11, item 5)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks

urlpatterns: list[Any] = []  # a URLconf without cmi_wagtail.urls


# Model checks ask the database what it supports (JSONField on Django 6.1).
pytestmark = pytest.mark.django_db


def test_the_test_settings_pass_every_check() -> None:
    assert [m for m in checks.run_checks() if m.is_serious()] == []


def test_unmounted_callback_is_an_error(settings: Any) -> None:
    assert not [m for m in checks.run_checks() if m.id == "cmi_wagtail.E001"]
    settings.ROOT_URLCONF = "tests.adapters.wagtail.test_checks"
    (error,) = [m for m in checks.run_checks() if m.id == "cmi_wagtail.E001"]
    assert error.level == checks.ERROR
    assert 'include("cmi_wagtail.urls")' in (error.hint or "")
