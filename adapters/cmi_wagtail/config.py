"""A site's :class:`~cmi_wagtail.models.CMISettings` -> :class:`cmi_core.CMIConfig`.

Payments made on a Wagtail site carry the config key ``"wagtail:<site id>"``;
:func:`config_for_site` is registered with :func:`cmi_django.config.register_config_resolver`
so the shared layer (callbacks, staff operations, ``cmi_reconcile``) finds the credentials
of the site the payment was made on, read when used, never cached.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from wagtail.models import Site

    from cmi_core import CMIConfig

__all__ = ["PLATFORM", "PREFIX", "config_for_site", "config_key", "settings_mapping"]

PLATFORM = "wagtail"
PREFIX = "wagtail"


def config_key(site: Site) -> str:
    """The shared layer's config key of ``site``."""
    return f"{PREFIX}:{site.pk}"


def settings_mapping(settings: Any) -> dict[str, Any]:
    """The ``CMI_PAYMENTS``-style entry (upper-case names) of a ``CMISettings`` row."""
    return dict(settings.credentials_mapping())


def config_for_site(site_id: str) -> CMIConfig:
    """The configuration of the site whose id is ``site_id`` (the resolver)."""
    from cmi_wagtail.models import CMISettings

    where = f"CMI settings of Wagtail site {site_id}"
    if not site_id.isdigit():
        raise ImproperlyConfigured(f"{where}: not a site id")
    settings = CMISettings.objects.filter(site_id=int(site_id)).first()
    if settings is None or not settings.client_id or not settings.store_key:
        raise ImproperlyConfigured(
            f"{where}: enter the client id and the store key (Wagtail admin, Settings, "
            "CMI payments)"
        )
    return settings.cmi_config()
