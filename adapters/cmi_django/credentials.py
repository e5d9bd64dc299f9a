"""A merchant's CMI credentials kept in the database, written once for every platform.

Saleor keeps one CMI account per channel (``cmi_saleor.models.ChannelConfiguration``),
Wagtail one per site (``cmi_wagtail.models.CMISettings``). Both are built on:

- :class:`CredentialsModel`: an abstract model (no columns of its own, so each platform
  keeps its table, its labels and its migrations) that turns the row into the core's
  :class:`cmi_core.CMIConfig` and validates it one way: whatever ``CMIConfig`` refuses is
  refused on the field at fault, with the core's rule as the message (never the value).
- :class:`WriteOnlySecretsMixin`: the admin form's side. The store key and the API password
  render as empty password inputs (a stored secret never goes back to the browser); an
  empty input keeps the stored secret; a password without an API user name is dropped
  (the API is off without a user, and the pair goes together in ``CMIConfig``).
- :func:`mask`: all that is ever shown of a secret (``"••••••••…42"``).

The store key is the HMAC key of guide §4.1.2 (the hash of the payment form) and of the
callback's check (§4.2.1); the API user and password sign in to CMI's XML API (§5).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from cmi_core import CMIConfig, ConfigurationError
from cmi_django.config import config_from_mapping

__all__ = ["SECRET_FIELDS", "CredentialsModel", "WriteOnlySecretsMixin", "mask"]

#: The model fields that hold secrets (encrypted at rest, write-only in forms).
SECRET_FIELDS = ("store_key", "api_password")


def mask(secret: str) -> str:
    """``"••••••••…01"`` for a long secret, ``"••••••••"`` otherwise, ``""`` when unset."""
    if not secret:
        return ""
    return "••••••••" + (f"…{secret[-2:]}" if len(secret) >= 12 else "")


class CredentialsModel(models.Model):
    """The behaviour shared by the platforms' credential models; the columns are theirs.

    A concrete model declares ``client_id``, ``store_key``, ``api_username``,
    ``api_password``, ``environment``, ``base_url``, ``capture_mode`` and the page language
    under the name :attr:`language_field`, then sets :attr:`credentials_label`.
    """

    #: The column holding CMI's page language (``lang`` on Saleor, ``default_language``
    #: on Wagtail, whose field name predates this base).
    language_field: ClassVar[str] = "lang"
    #: True: a row with neither client id nor store key is valid ("not configured yet").
    may_be_unconfigured: ClassVar[bool] = False

    client_id: str
    store_key: str
    api_username: str
    api_password: str
    environment: str
    base_url: str
    capture_mode: str

    class Meta:
        abstract = True

    def credentials_label(self) -> str:
        """How errors name this row (``ImproperlyConfigured`` messages), never a secret."""
        return f"{type(self).__name__} {self.pk}"

    @property
    def is_configured(self) -> bool:
        return bool(self.client_id and self.store_key)

    def credentials_mapping(self) -> dict[str, Any]:
        """The ``CMI_PAYMENTS``-style entry (upper-case names) of this row.

        The API password counts only with an API user name (see the module docstring).
        """
        entry: dict[str, Any] = {
            "CLIENT_ID": self.client_id,
            "STORE_KEY": self.store_key,
            "ENVIRONMENT": self.environment,
            "BASE_URL": self.base_url or None,
            "LANG": getattr(self, self.language_field),
            "CAPTURE_MODE": self.capture_mode,
        }
        if self.api_username:
            entry["API_USERNAME"] = self.api_username
            entry["API_PASSWORD"] = self.api_password
        return entry

    def cmi_config(self) -> CMIConfig:
        """The core's configuration; ``ImproperlyConfigured`` names the entry at fault."""
        return config_from_mapping(self.credentials_mapping(), setting=self.credentials_label())

    def clean(self) -> None:
        """Refuse what :class:`cmi_core.CMIConfig` refuses, on the field at fault."""
        super().clean()
        if self.may_be_unconfigured and not self.client_id and not self.store_key:
            return  # not configured yet: allowed, payments then say so
        if not self.store_key:
            raise ValidationError({"store_key": _("The store key is required.")})
        errors = self._config_errors()
        if errors:
            raise ValidationError(errors)

    def _config_errors(self) -> dict[str, str]:
        """``{field: the core's rule}`` for what :class:`cmi_core.CMIConfig` refuses."""
        entry = self.credentials_mapping()
        try:
            CMIConfig(
                client_id=entry["CLIENT_ID"],
                store_key=entry["STORE_KEY"],
                environment=entry["ENVIRONMENT"],
                base_url=entry["BASE_URL"],
                api_username=entry.get("API_USERNAME", ""),
                api_password=entry.get("API_PASSWORD", ""),
                lang=entry["LANG"],
                capture_mode=entry["CAPTURE_MODE"],
            )
        except ConfigurationError as exc:
            field = {"lang": self.language_field}.get(exc.setting, exc.setting)
            if field not in {f.name for f in self._meta.fields}:
                field = "client_id"
            return {field: exc.rule}
        return {}


class WriteOnlySecretsMixin(forms.ModelForm):
    """Put before the platform's ``ModelForm``: secrets are write-only (module docstring).

    An optional boolean field ``clear_<secret>`` (Saleor's "Remove the API password")
    empties that secret when ticked.
    """

    secret_fields: ClassVar[tuple[str, ...]] = SECRET_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in self.secret_fields:
            if name not in self.fields:
                continue
            field = self.fields[name]
            field.widget = forms.PasswordInput(
                render_value=False, attrs={"autocomplete": "new-password"}
            )
            field.required = False
            if isinstance(field, forms.CharField):
                field.strip = False  # CMIConfig refuses spaces around a key: say so
            self.initial[name] = ""
            stored = str(getattr(self.instance, name, "") or "") if self.instance.pk else ""
            field.help_text = self.secret_help_text(name, stored)

    def secret_help_text(self, name: str, stored: str) -> str:
        """The help under a secret's input; ``stored`` is the secret (show only :func:`mask`)."""
        if stored:
            return str(
                _(
                    "A value is stored (not shown). Leave empty to keep it; type a new one "
                    "to replace it."
                )
            )
        return str(_("No value stored yet."))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in self.secret_fields:
            if name not in self.fields:
                continue
            if cleaned.get(f"clear_{name}"):
                cleaned[name] = ""
            elif not cleaned.get(name):
                cleaned[name] = str(getattr(self.instance, name, "") or "")
        if "api_password" in cleaned and not (cleaned.get("api_username") or "").strip():
            cleaned["api_password"] = ""  # no API user: the password goes with it
        return cleaned
