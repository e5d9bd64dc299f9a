"""Per-site CMI settings: encrypted at rest, write-only in the admin, resolved per site."""

from __future__ import annotations

from typing import Any

import pytest
from cmi_django.config import get_config
from cmi_wagtail.models import CMISettings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client
from django.urls import reverse
from wagtail.models import Site
from wagtail.test.utils import WagtailTestUtils

from cmi_core.sandbox import DEFAULT_MERCHANT

from .conftest import STORE_KEY, configure

pytestmark = pytest.mark.django_db

API_PASSWORD = "sandbox-api-password"


def raw(column: str, site: Site) -> str:
    with connection.cursor() as cursor:
        table = CMISettings._meta.db_table
        cursor.execute(f"SELECT {column} FROM {table} WHERE site_id = %s", [site.pk])  # noqa: S608
        return str(cursor.fetchone()[0])


def test_secrets_are_encrypted_at_rest(cmi_settings: CMISettings, site: Site) -> None:
    for column, plain in (("store_key", STORE_KEY), ("api_password", API_PASSWORD)):
        stored = raw(column, site)
        assert plain not in stored
        assert stored.startswith("gAAAA")  # a Fernet token
    fresh = CMISettings.objects.get(site=site)
    assert fresh.store_key == STORE_KEY
    assert fresh.api_password == API_PASSWORD


def test_resolver_builds_the_site_config(cmi_settings: CMISettings, site: Site) -> None:
    config = get_config(f"wagtail:{site.pk}")
    assert config.client_id == "600000001"
    assert config.store_key == STORE_KEY
    assert config.base_url == "http://127.0.0.1:9"
    assert config.has_api_user
    assert STORE_KEY not in repr(config)


def test_resolver_without_credentials(site: Site) -> None:
    with pytest.raises(ImproperlyConfigured, match="client id and the store key"):
        get_config(f"wagtail:{site.pk}")
    with pytest.raises(ImproperlyConfigured, match="not a site id"):
        get_config("wagtail:abc")


def test_model_validation_names_the_field(site: Site) -> None:
    settings = CMISettings.for_site(site)
    settings.client_id = "bad id!"
    settings.store_key = "k"
    with pytest.raises(Exception, match="client_id") as caught:
        settings.full_clean()
    assert "k" not in str(caught.value).replace("client_id", "")
    settings.client_id = "600000001"
    settings.environment = "production"
    settings.base_url = "http://127.0.0.1:8765"
    with pytest.raises(Exception, match="base_url"):
        settings.full_clean()


class TestAdminForm(WagtailTestUtils):
    @pytest.fixture(autouse=True)
    def _login(self, client: Client, site: Site, django_user_model: Any) -> None:
        user = django_user_model.objects.create_superuser("boss", "boss@example.ma", "pw")
        client.force_login(user)
        self.client = client
        self.site = site
        self.url = reverse("wagtailsettings:edit", args=["cmi_wagtail", "cmisettings", site.pk])

    def data(self, **values: str) -> dict[str, str]:
        base = {
            "client_id": "600000001",
            "store_key": "",
            "api_username": "sandbox_api",
            "api_password": "",
            "environment": "test",
            "base_url": "http://127.0.0.1:8765",
            "capture_mode": "manual",
            "default_language": "fr",
            "receipt_from_email": "",
        }
        base.update(values)
        return base

    def test_secrets_never_shown_back(self) -> None:
        configure(self.site)
        html = self.client.get(self.url).content.decode()
        assert STORE_KEY not in html
        assert API_PASSWORD not in html
        assert 'type="password" name="store_key"' in html
        assert "A value is stored" in html or "valeur est enregistrée" in html

    def test_empty_inputs_keep_the_secrets(self) -> None:
        configure(self.site)
        response = self.client.post(self.url, self.data())
        assert response.status_code == 302, response.content.decode()[-3000:]
        saved = CMISettings.objects.get(site=self.site)
        assert saved.store_key == STORE_KEY
        assert saved.api_password == API_PASSWORD
        assert saved.capture_mode == "manual"

    def test_typed_secret_replaces(self) -> None:
        configure(self.site)
        response = self.client.post(self.url, self.data(store_key="NEW-KEY-0002"))
        assert response.status_code == 302
        assert CMISettings.objects.get(site=self.site).store_key == "NEW-KEY-0002"
        assert "NEW-KEY-0002" not in raw("store_key", self.site)

    def test_no_api_user_drops_the_password(self) -> None:
        configure(self.site)
        response = self.client.post(self.url, self.data(api_username=""))
        assert response.status_code == 302
        assert CMISettings.objects.get(site=self.site).api_password == ""

    def test_first_save_needs_the_store_key_with_the_client_id(self) -> None:
        response = self.client.post(self.url, self.data(api_username=""))
        assert response.status_code == 200
        assert "store_key" in response.context["form"].errors
        assert not CMISettings.objects.filter(site=self.site, client_id="600000001").exists()


@pytest.mark.django_db
def test_only_who_may_change_the_settings_may_test_the_credentials(
    client: Any, site: Any, django_user_model: Any
) -> None:
    from django.contrib.auth.models import Permission

    editor = django_user_model.objects.create_user("editor", "editor@example.ma", "pw")
    editor.user_permissions.add(Permission.objects.get(codename="access_admin"))
    client.force_login(editor)
    url = reverse("cmi_wagtail_test_credentials", args=[site.pk])
    refused = client.post(url, {"client_id": "600000001"})
    assert refused.status_code in (302, 403)  # Wagtail: "permission denied", back home
    assert b"cmi-credentials-result" not in refused.content
    assert client.get(url).status_code in (302, 403, 405)


def test_language_choices_are_the_cores() -> None:
    """One list of CMI's page languages for Wagtail and Saleor (cmi_core.codes)."""
    from cmi_core.codes import LANGUAGE_CHOICES, LANGUAGES

    field = CMISettings._meta.get_field("default_language")
    assert list(field.choices) == list(LANGUAGE_CHOICES)
    assert [code for code, _ in field.choices] == list(LANGUAGES)


@pytest.mark.django_db
def test_the_credentials_test_checks_the_store_key_at_the_gateway(
    admin_client: Client, site: Site, sandbox: Any
) -> None:
    """A signed request to the emulator's gateway: right key found, wrong key refused
    (3D-1004); the typed key never reaches the page (issue 13)."""
    configure(site, base_url=sandbox.base_url)
    url = reverse("cmi_wagtail_test_credentials", args=[site.pk])
    fields = {"client_id": DEFAULT_MERCHANT.client_id, "base_url": sandbox.base_url}
    stored = admin_client.post(url, fields)  # the stored (right) store key
    assert stored.context["check"].store_key == "right"
    assert 'data-verdict="right"' in stored.content.decode()
    wrong = "TypedWrongKey77"
    typed = admin_client.post(url, {**fields, "store_key": wrong})
    html = typed.content.decode()
    assert typed.context["check"].store_key == "wrong"
    assert 'data-verdict="wrong"' in html
    assert "3D-1004" in html
    assert wrong not in html
