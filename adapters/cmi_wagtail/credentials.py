"""The settings page's "Test the credentials" button (:func:`cmi_django.credential_check`).

The button sits inside the CMI settings form and posts it here (``formaction``): the
credentials as typed, the stored secrets where their fields were left empty (as saving
would keep them). Nothing is saved; the answer says what CMI found, for the API
credentials and for the store key (a signed request to CMI's gateway).
"""

from __future__ import annotations

from cmi_django.config import config_from_mapping
from cmi_django.credential_check import CredentialsCheck, check_credentials
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from cmi_core import ConfigurationError

__all__ = ["credentials_test_view"]


def credentials_test_view(request: HttpRequest, site_id: int) -> HttpResponse:
    from cmi_wagtail.models import CMISettings

    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not request.user.has_perm("cmi_wagtail.change_cmisettings"):
        raise PermissionDenied
    stored = CMISettings.objects.filter(site_id=site_id).first()

    def typed(name: str, secret: bool = False) -> str:
        value = (request.POST.get(name) or "").strip()
        if secret and not value and stored is not None:
            return str(getattr(stored, name, "") or "")
        return value

    values = CMISettings(  # unsaved: only read through the shared credentials mapping
        site_id=site_id,
        client_id=typed("client_id"),
        store_key=typed("store_key", secret=True),
        environment=typed("environment") or "test",
        base_url=typed("base_url"),
        default_language=typed("default_language") or "fr",
        capture_mode=typed("capture_mode") or "auto",
        api_username=typed("api_username"),
        api_password=typed("api_password", secret=True),
    )
    try:
        config = config_from_mapping(values.credentials_mapping(), setting=_("CMI settings"))
    except (ImproperlyConfigured, ConfigurationError) as exc:  # names a setting, no value
        check = CredentialsCheck(False, str(exc)[:300])
    else:
        shop = request.build_absolute_uri("/")  # CMI requires them; nobody is sent there
        check = check_credentials(config, ok_url=shop, fail_url=shop)
    return TemplateResponse(request, "cmi_wagtail/admin/test_credentials.html", {"check": check})
