"""The app's settings, read when used (never at import).

- ``CMI_SALEOR_APP_URL`` (required): the public base URL of this Django site, e.g.
  ``"https://cmi-saleor.example.ma"``; every URL the app gives Saleor or CMI is built
  from it (Saleor never follows redirects, so it must be the exact public address).
- ``CMI_SALEOR_ALLOWED_API_URLS``: the Saleor API URLs allowed to install the app
  (``["https://shop.example.ma/graphql/"]``). Required outside the demo: unset, no Saleor
  may install the app and ``manage.py check`` fails (``cmi_saleor.E001``).
- ``CMI_SALEOR_ALLOWED_RETURN_HOSTS``: host names the storefront's ``returnUrl`` may
  point to. Required outside the demo: unset, every ``returnUrl`` is refused and
  ``manage.py check`` fails (``cmi_saleor.E002``).
- ``CMI_SALEOR_DEMO`` (False): ``True`` marks a local demo, where the two lists above
  may stay unset and then allow any Saleor and any host. Only this explicit setting
  counts (not ``DEBUG``), so a forgotten ``DEBUG=True`` opens nothing.
- ``CMI_SALEOR_DASHBOARD_ORIGINS``: origins (``"https://dashboard.example.ma"``) of
  Saleor Dashboards allowed to frame the configuration page besides the origin of the
  registered Saleor API URL (a Dashboard served from another origin than the API).
- ``CMI_SALEOR_APP_ID`` (``"ma.cmi.payments"``) and ``CMI_SALEOR_APP_NAME`` (``"CMI"``):
  the manifest id (the payment gateway id storefronts use) and name.
- ``CMI_SALEOR_HTTP_TIMEOUT`` (10): seconds for each call to Saleor.
- ``CMI_SALEOR_ACTION_WITHIN`` (14): seconds a charge, refund or cancel request may wait
  for CMI before the app answers Saleor "pending" (the operation then settles from CMI's
  history and is reported). Saleor gives up on a webhook after 18 seconds (its
  ``WEBHOOK_SYNC_TIMEOUT``, 20 in older versions) and books a failure, whatever CMI did;
  keep this a few seconds below that.
- ``CMI_SALEOR_JWKS_REFETCH_INTERVAL`` (60): seconds between two JWKS re-fetches caused by
  failed signatures made with a key id the stored JWKS has.
- ``CMI_SALEOR_JWKS_UNKNOWN_KID_INTERVAL`` (5): the same for a key id the stored JWKS lacks
  (a key rotation, or a forgery): short, so a rotation is picked up at once, yet forged
  key ids cost Saleor at most one fetch per this many seconds per installation. Never
  longer than ``CMI_SALEOR_JWKS_REFETCH_INTERVAL``.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

DEFAULT_APP_ID = "ma.cmi.payments"


def split(url: str) -> SplitResult | None:
    """``urlsplit(url)`` with its host read; None where that raises (``"https://["``,
    a port out of range): anything a sender writes is answered, never a 500."""
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018 - raises on a malformed host or port
        parts.port  # noqa: B018
    except ValueError:
        return None
    return parts


def app_url() -> str:
    value = getattr(settings, "CMI_SALEOR_APP_URL", None)
    parts = split(str(value or ""))
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ImproperlyConfigured(
            "CMI_SALEOR_APP_URL: set it to this app's public base URL, "
            'e.g. "https://cmi-saleor.example.ma"'
        )
    return str(value).rstrip("/")


def absolute(name: str, **kwargs: str) -> str:
    """The public URL of the named ``cmi_saleor`` view."""
    return app_url() + reverse(f"cmi_saleor:{name}", kwargs=kwargs or None)


def app_id() -> str:
    return str(getattr(settings, "CMI_SALEOR_APP_ID", None) or DEFAULT_APP_ID)


def app_name() -> str:
    return str(getattr(settings, "CMI_SALEOR_APP_NAME", None) or "CMI")


def demo() -> bool:
    """Whether ``CMI_SALEOR_DEMO`` is ``True`` (unset allow-lists then allow anything)."""
    return getattr(settings, "CMI_SALEOR_DEMO", False) is True


def plausible_api_url(value: str) -> bool:
    """Whether a ``Saleor-Api-Url`` value is worth looking up: an http(s) URL of at most
    500 printable characters (a NUL would make PostgreSQL raise, not answer "unknown")."""
    parts = split(value)
    return (
        parts is not None
        and 0 < len(value) <= 500
        and value.isprintable()
        and parts.scheme in ("http", "https")
        and bool(parts.netloc)
    )


def api_url_allowed(api_url: str) -> bool:
    """Whether the Saleor at ``api_url`` may install the app (fails closed, see above)."""
    allowed = getattr(settings, "CMI_SALEOR_ALLOWED_API_URLS", None)
    if allowed is None:
        return demo()
    if isinstance(allowed, str):
        allowed = [allowed]
    return api_url in set(allowed)


def return_url_allowed(url: str) -> bool:
    parts = split(url)
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or len(url) > 2048
    ):
        return False
    hosts = getattr(settings, "CMI_SALEOR_ALLOWED_RETURN_HOSTS", None)
    if hosts is None:
        return demo()
    if isinstance(hosts, str):
        hosts = [hosts]
    return parts.hostname.lower() in {str(h).lower() for h in hosts}


def dashboard_origins() -> list[str]:
    """``CMI_SALEOR_DASHBOARD_ORIGINS`` as ``scheme://host[:port]`` strings."""
    value = getattr(settings, "CMI_SALEOR_DASHBOARD_ORIGINS", None) or []
    if isinstance(value, str):
        value = [value]
    return [o for o in (origin(str(v)) for v in value) if o]


def origin(url: str) -> str:
    """``scheme://host[:port]`` of an http(s) URL; ``""`` for anything else."""
    parts = split(url.strip())
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    if (
        not parts.netloc.isascii()
        or any(c in parts.netloc for c in " ;,*'\"\\")
        or (not parts.netloc.isprintable())
    ):
        return ""  # nothing that could widen or break a CSP source expression
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2].lower()}"


def http_timeout() -> float:
    return float(getattr(settings, "CMI_SALEOR_HTTP_TIMEOUT", 10))


def action_within() -> float:
    """Seconds a Saleor charge, refund or cancel waits for CMI (module docstring)."""
    return float(getattr(settings, "CMI_SALEOR_ACTION_WITHIN", 14))


def jwks_refetch_interval() -> float:
    return float(getattr(settings, "CMI_SALEOR_JWKS_REFETCH_INTERVAL", 60))


def jwks_unknown_kid_interval() -> float:
    return float(getattr(settings, "CMI_SALEOR_JWKS_UNKNOWN_KID_INTERVAL", 5))
