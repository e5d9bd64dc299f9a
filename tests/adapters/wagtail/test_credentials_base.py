"""Wagtail's site settings on the shared credentials base: the same rules as Saleor's."""

from __future__ import annotations

import pytest
from cmi_django.credentials import CredentialsModel, WriteOnlySecretsMixin
from cmi_wagtail.forms import CMISettingsForm
from cmi_wagtail.models import CMISettings
from django.core.exceptions import ValidationError
from wagtail.models import Site

pytestmark = pytest.mark.django_db


def test_the_site_settings_are_a_shared_credentials_model() -> None:
    assert issubclass(CMISettings, CredentialsModel)
    assert issubclass(CMISettingsForm, WriteOnlySecretsMixin)


def test_a_store_key_with_spaces_is_refused_not_trimmed(site: Site) -> None:
    settings = CMISettings.for_site(site)
    settings.client_id = "600000001"
    settings.store_key = " KEY-WITH-A-SPACE "
    with pytest.raises(ValidationError) as caught:
        settings.full_clean()
    assert "store_key" in caught.value.message_dict
    assert "spaces" in caught.value.message_dict["store_key"][0]


def test_the_mapping_is_the_one_saleor_builds(site: Site) -> None:
    settings = CMISettings.for_site(site)
    settings.client_id = "600000001"
    settings.store_key = "K-1"
    settings.api_username = ""
    settings.api_password = "left-behind"
    settings.default_language = "ar"
    assert settings.credentials_mapping() == {
        "CLIENT_ID": "600000001",
        "STORE_KEY": "K-1",
        "ENVIRONMENT": "test",
        "BASE_URL": None,
        "LANG": "ar",
        "CAPTURE_MODE": "auto",
    }
    assert settings.cmi_config().lang == "ar"
