"""The shared Django layer's entry points, in one place for the platforms (re-exports).

The work is done in modules named for what they do:

- :mod:`cmi_django.payments`: creating a payment and its signed form (guide §4.1);
- :mod:`cmi_django.inbound`: CMI's callback and the shopper's returns (guide §4.2);
- :mod:`cmi_django.operations`: capture, void, refund, flag (guide §5), sent at most once;
- :mod:`cmi_django.sync`: CMI's status report applied (refresh, reconcile);
- :mod:`cmi_django.changes`: each change handed to the platform hook as one value.
"""

from __future__ import annotations

from cmi_django.changes import PlatformHookError
from cmi_django.inbound import (
    MAX_BODY,
    MAX_FIELDS,
    BadBodyError,
    CallbackOutcome,
    ReturnOutcome,
    approve_without_callback,
    handle_callback,
    handle_callback_body,
    handle_return,
    parse_body,
)
from cmi_django.operations import OperationPendingError, capture, flag, refund, void
from cmi_django.payments import callback_url, create_payment, new_oid
from cmi_django.sync import StatusCheck, check_status, refresh

__all__ = [
    "MAX_BODY",
    "MAX_FIELDS",
    "BadBodyError",
    "CallbackOutcome",
    "OperationPendingError",
    "PlatformHookError",
    "ReturnOutcome",
    "StatusCheck",
    "approve_without_callback",
    "callback_url",
    "capture",
    "check_status",
    "create_payment",
    "flag",
    "handle_callback",
    "handle_callback_body",
    "handle_return",
    "new_oid",
    "parse_body",
    "refresh",
    "refund",
    "void",
]
