"""The channel configuration form (Django admin and the Dashboard page share it).

Secrets are write-only (:class:`cmi_django.credentials.WriteOnlySecretsMixin`): the
fields render empty, an empty value keeps the stored secret, and :func:`mask` is all that
is ever shown of them.
"""

from __future__ import annotations

from cmi_django.credentials import WriteOnlySecretsMixin, mask
from django import forms

from cmi_saleor.models import ChannelConfiguration

__all__ = ["ChannelConfigurationForm", "mask"]

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

    def secret_help_text(self, name: str, stored: str) -> str:
        return (f"Stored: {mask(stored)}. " if stored else "") + _HELP[name]
