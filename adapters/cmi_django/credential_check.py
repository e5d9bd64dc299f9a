"""Test a merchant's API credentials without touching a payment (for settings pages).

CMI's API answers a status query (``ORDERSTATUS``, guide §5) for an order that does not
exist with "No record found" when the client id, API user and password are right, and
with an authorisation error (``CORE-2001`` "Insufficient permissions") when they are
not. :func:`check_credentials` asks about a made-up order id and says which it was.

The store key is not part of an API call (it signs the payment form, guide §4.1.3). Given
the shop's address, :func:`check_credentials` also posts a signed payment form for a
made-up order to CMI's gateway (:func:`cmi_core.keycheck.check_store_key`): CMI refuses a
wrong hash with ``3D-1004`` and shows its card form for a right one. Nothing is charged;
the key itself is never sent, logged or shown.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.utils.translation import gettext as _

from cmi_core import APIError, APITransportError, CMIClient, CMIConfig
from cmi_core.api import OrderNotFoundError
from cmi_core.keycheck import StoreKeyVerdict, check_store_key

__all__ = ["CredentialsCheck", "check_credentials"]


@dataclass(frozen=True)
class CredentialsCheck:
    """``ok``: CMI accepted the API credentials; ``message``: what was found, for people.

    ``store_key``: what CMI's gateway said of the store key (None: not checked);
    ``store_key_message``: the same, for people.
    """

    ok: bool
    message: str
    store_key: StoreKeyVerdict | None = None
    store_key_message: str = ""


def check_credentials(
    config: CMIConfig, *, ok_url: str | None = None, fail_url: str | None = None
) -> CredentialsCheck:
    """Ask CMI about a made-up order with ``config``'s API credentials and, given the shop's
    ``ok_url`` and ``fail_url``, check the store key at the gateway; never raises."""
    api = _check_api(config)
    if ok_url is None or fail_url is None:
        return api
    verdict, message = _check_store_key(config, ok_url, fail_url)
    return CredentialsCheck(api.ok, api.message, verdict, message)


def _check_store_key(config: CMIConfig, ok_url: str, fail_url: str) -> tuple[StoreKeyVerdict, str]:
    found = check_store_key(config, ok_url=ok_url, fail_url=fail_url)
    if found.verdict is StoreKeyVerdict.RIGHT:
        return found.verdict, _(
            "CMI accepted the store key: its payment page opened for a made-up test order "
            "(no card was entered, nothing was charged)."
        )
    if found.verdict is StoreKeyVerdict.WRONG:
        return found.verdict, _(
            "CMI refused the store key (3D-1004, wrong security code): enter the store key "
            "set in CMI's Merchant Center."
        )
    if found.http_status is None:
        return found.verdict, _(
            "The store key could not be checked: CMI's payment page could not be reached "
            "(%(problem)s)."
        ) % {"problem": found.problem}
    codes = ", ".join(found.codes) or "-"
    return found.verdict, _(
        "The store key could not be checked: CMI's payment page answered HTTP %(status)s "
        "(codes: %(codes)s). Check the client id and the environment."
    ) % {"status": found.http_status, "codes": codes}


def _check_api(config: CMIConfig) -> CredentialsCheck:
    if not config.api_username:
        return CredentialsCheck(False, _("Enter the API user and password to test them."))
    oid = f"credentials-test-{uuid.uuid4().hex[:12]}"
    try:
        with CMIClient(config) as client:
            client.status(oid)
    except OrderNotFoundError:
        return CredentialsCheck(
            True,
            _(
                "CMI accepted the client id, API user and password (it answered that the "
                "made-up test order does not exist)."
            ),
        )
    except APITransportError:
        return CredentialsCheck(
            False, _("CMI could not be reached: check the environment and the gateway URL.")
        )
    except APIError as exc:
        code = f" ({exc.error_code})" if exc.error_code else ""
        return CredentialsCheck(
            False,
            _("CMI refused these credentials: %(reason)s") % {"reason": f"{exc.err_msg}{code}"},
        )
    return CredentialsCheck(True, _("CMI accepted the client id, API user and password."))
