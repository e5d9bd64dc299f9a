"""The channel configuration form (Django admin and the Dashboard page share it).

Secrets are write-only: the fields render empty, an empty value keeps the stored secret,
and :func:`mask` is all that is ever shown of them.
"""

from __future__ import annotations

from typing import Any

from cmi_django.crypto import DecryptionError
from django import forms
from django.core.exceptions import ImproperlyConfigured

from cmi_saleor.models import ChannelConfiguration

__all__ = ["ChannelConfigurationForm", "mask"]

SECRETS = ("store_key", "api_password")


def mask(secret: str) -> str:
    """``"••••••••…01"`` for a long secret, ``"••••••••"`` otherwise, ``""`` when unset."""
    if not secret:
        return ""
    return "••••••••" + (f"…{secret[-2:]}" if len(secret) >= 12 else "")


class ChannelConfigurationForm(forms.ModelForm):  # type: ignore[type-arg]
    store_key = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only; leave empty to keep the stored key.",
    )
    api_password = forms.CharField(
        label="API password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only; leave empty to keep the stored password.",
    )
    clear_api_password = forms.BooleanField(required=False, label="Remove the API password")
    base_url = forms.URLField(
        label="gateway base URL",
        required=False,
        assume_scheme="https",
        help_text="Only for a CMI emulator such as `cmi sandbox`; empty for CMI itself.",
    )

    class Meta:
        model = ChannelConfiguration
        fields = (
            "installation",
            "channel",
            "enabled",
            "client_id",
            "store_key",
            "api_username",
            "api_password",
            "capture_mode",
            "environment",
            "base_url",
            "lang",
        )

    def __init__(self, *args: Any, instance: Any = None, **kwargs: Any) -> None:
        #: Secrets stored under a key no longer configured: they must be entered again.
        self.undecryptable: dict[str, str] = {}
        if instance is not None and instance.pk:
            for name in SECRETS:
                try:
                    getattr(instance, name)
                except DecryptionError as exc:
                    self.undecryptable[name] = exc.setting
                    instance.__dict__[name] = ""  # read as empty; saved only if re-entered
        super().__init__(*args, instance=instance, **kwargs)
        # The app token is not needed to pick an installation: not read, not decrypted.
        installation = self.fields["installation"]
        installation.queryset = installation.queryset.defer("token")  # type: ignore[attr-defined]
        if self.instance.pk:
            for name in SECRETS:
                if name in self.undecryptable:
                    self.fields[name].help_text = (
                        "The stored value cannot be decrypted with the current "
                        f"{self.undecryptable[name]} (rotated without its fallback?): "
                        "enter it again."
                    )
                    continue
                stored = getattr(self.instance, name)
                if stored:
                    self.fields[name].help_text = f"Stored: {mask(stored)}. " + str(
                        self.fields[name].help_text
                    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        stored = self.instance
        for name in SECRETS:
            if not cleaned.get(name) and name in self.undecryptable:
                if name == "store_key" or not cleaned.get("clear_api_password"):
                    self.add_error(name, "The stored value cannot be decrypted: enter it again.")
                cleaned[name] = ""
            elif not cleaned.get(name):
                cleaned[name] = getattr(stored, name, "") if stored.pk else ""
        if cleaned.get("clear_api_password"):
            cleaned["api_password"] = ""
        if not cleaned.get("store_key"):
            self.add_error("store_key", "The store key is required.")
            return cleaned
        probe = ChannelConfiguration(
            **{
                k: v
                for k, v in cleaned.items()
                if k in {f.name for f in ChannelConfiguration._meta.fields}
            }
        )
        try:
            probe.cmi_config()
        except ImproperlyConfigured as exc:
            raise forms.ValidationError(str(exc)) from None
        return cleaned

    def _post_clean(self) -> None:
        super()._post_clean()
        for name in SECRETS:
            if name in self.cleaned_data:
                setattr(self.instance, name, self.cleaned_data[name])
