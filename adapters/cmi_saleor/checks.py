"""System checks of the Saleor app (see :mod:`cmi_django.checks`): fail closed.

Outside the demo (``CMI_SALEOR_DEMO = True``, :mod:`cmi_saleor.conf`):

- ``cmi_saleor.E001``: ``CMI_SALEOR_ALLOWED_API_URLS`` unset: the app would otherwise let
  any Saleor install it, then send requests wherever its ``Saleor-Api-Url`` points.
- ``cmi_saleor.E002``: ``CMI_SALEOR_ALLOWED_RETURN_HOSTS`` unset: a storefront's
  ``returnUrl`` is where a verified okUrl POST redirects the shopper (open redirect).

Always:

- ``cmi_saleor.E003``: ``CMI_SALEOR_APP_URL`` is not an absolute http(s) URL.
- ``cmi_saleor.E004``: ``cmi_saleor.urls`` (CMI's callback, guide §4.2) is not mounted.
- ``cmi_saleor.E005``: one of the two allow-lists is not a list of strings.
- ``cmi_saleor.E006``: ``CMI_SALEOR_ACTION_WITHIN`` is not a number of seconds above 0
  and below 18 (Saleor gives up on a charge, refund or cancel after 18 s and books a
  failure, whatever CMI did: the app must answer before that).
"""

from __future__ import annotations

from typing import Any

from cmi_django.checks import callback_unmounted
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from cmi_saleor import conf

__all__ = ["check_saleor"]

#: Seconds Saleor waits for a transaction action webhook (``WEBHOOK_SYNC_TIMEOUT``'s read
#: timeout; 20 in older versions).
_SALEOR_GIVES_UP = 18

_LISTS = {
    "CMI_SALEOR_ALLOWED_API_URLS": (
        "cmi_saleor.E001",
        (
            "any Saleor could install the app, which then sends requests wherever the "
            "installer's Saleor-Api-Url points"
        ),
        'CMI_SALEOR_ALLOWED_API_URLS = ["https://shop.example.ma/graphql/"]',
    ),
    "CMI_SALEOR_ALLOWED_RETURN_HOSTS": (
        "cmi_saleor.E002",
        "a verified payment would redirect the shopper to any host a storefront names",
        'CMI_SALEOR_ALLOWED_RETURN_HOSTS = ["shop.example.ma"]',
    ),
}


def check_saleor(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001-E005 above."""
    errors: list[checks.CheckMessage] = []
    for name, (error_id, risk, example) in _LISTS.items():
        value = getattr(settings, name, None)
        if value is None:
            if not conf.demo():
                errors.append(
                    checks.Error(
                        f"{name} is not set: {risk}.",
                        hint=f"Set it (e.g. {example}), or CMI_SALEOR_DEMO = True for a "
                        "local demo only.",
                        id=error_id,
                    )
                )
        elif not isinstance(value, str) and (
            not isinstance(value, list | tuple | set | frozenset)
            or not all(isinstance(v, str) and v for v in value)
        ):
            errors.append(
                checks.Error(
                    f"{name} must be a list of non-empty strings.",
                    hint=f"e.g. {example}",
                    id="cmi_saleor.E005",
                )
            )
    try:
        conf.app_url()
    except ImproperlyConfigured as exc:
        errors.append(checks.Error(str(exc), id="cmi_saleor.E003"))
    errors.extend(callback_unmounted("cmi_saleor:callback", "cmi_saleor.E004", "cmi_saleor.urls"))
    errors.extend(_action_within())
    return errors


def _action_within() -> list[checks.CheckMessage]:
    try:
        seconds = conf.action_within()
    except (TypeError, ValueError):
        seconds = float("nan")
    if 0 < seconds < _SALEOR_GIVES_UP:  # NaN fails this too
        return []
    return [
        checks.Error(
            f"CMI_SALEOR_ACTION_WITHIN must be a number of seconds above 0 and below "
            f"{_SALEOR_GIVES_UP}: Saleor gives up on a charge, refund or cancel after "
            f"{_SALEOR_GIVES_UP} s and books a failure, whatever CMI did.",
            hint="Leave it unset (14) or set a few seconds below 18.",
            id="cmi_saleor.E006",
        )
    ]
