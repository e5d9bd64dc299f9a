"""The channel configuration form (Django admin and the Dashboard page share it).

Secrets are write-only (:class:`cmi_django.credentials.WriteOnlySecretsMixin`): the
fields render empty, an empty value keeps the stored secret, and :func:`mask` is all that
is ever shown of them.
"""

from __future__ import annotations

from typing import Any

from cmi_django.credentials import SECRET_FIELDS, WriteOnlySecretsMixin, mask
from cmi_django.crypto import DecryptionError
from django import forms

from cmi_saleor.models import ChannelConfiguration

__all__ = ["SECRETS", "ChannelConfigurationForm", "mask"]

SECRETS = SECRET_FIELDS  # the admin defers these columns

_HELP = {
    "store_key": "Write-only; leave empty to keep the stored key.",
    "api_password": "Write-only; leave empty to keep the stored password.",
}


class ChannelConfigurationForm(WriteOnlySecretsMixin):
    """Validated by :meth:`ChannelConfiguration.clean` (the shared credentials rules)."""

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
            for name in SECRET_FIELDS:
                try:
                    getattr(instance, name)
                except DecryptionError as exc:
                    self.undecryptable[name] = exc.setting
                    instance.__dict__[name] = ""  # read as empty; saved only if re-entered
        super().__init__(*args, instance=instance, **kwargs)
        # The app token is not needed to pick an installation: not read, not decrypted.
        installation = self.fields["installation"]
        installation.queryset = installation.queryset.defer("token")  # type: ignore[attr-defined]  # a ModelChoiceField

    def secret_help_text(self, name: str, stored: str) -> str:
        if name in self.undecryptable:
            return (
                "The stored value cannot be decrypted with the current "
                f"{self.undecryptable[name]} (rotated without its fallback?): enter it again."
            )
        return (f"Stored: {mask(stored)}. " if stored else "") + _HELP[name]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name in self.undecryptable:
            if cleaned.get(name):
                continue  # entered again
            if name == "store_key" or not cleaned.get("clear_api_password"):
                self.add_error(name, "The stored value cannot be decrypted: enter it again.")
        return cleaned
