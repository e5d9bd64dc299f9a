"""Test a merchant's API credentials without touching a payment (for settings pages).

CMI's API answers a status query (``ORDERSTATUS``, guide §5) for an order that does not
exist with "No record found" when the client id, API user and password are right, and
with an authorisation error (``CORE-2001`` "Insufficient permissions") when they are
not. :func:`check_credentials` asks about a made-up order id and says which it was.

The store key is not part of an API call (it signs the payment form, guide §4.1.2): this
test cannot tell a wrong store key; a small test payment does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.utils.translation import gettext as _

from cmi_core import APIError, APITransportError, CMIClient, CMIConfig
from cmi_core.api import OrderNotFoundError

__all__ = ["CredentialsCheck", "check_credentials"]


@dataclass(frozen=True)
class CredentialsCheck:
    """``ok``: CMI accepted the API credentials; ``message``: what was found, for people."""

    ok: bool
    message: str


def check_credentials(config: CMIConfig) -> CredentialsCheck:
    """Ask CMI about a made-up order with ``config``'s API credentials; never raises."""
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
                "made-up test order does not exist). The store key is not checked by this "
                "test: make a small test payment to check it."
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
