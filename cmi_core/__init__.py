"""cmi-payments core: CMI's e-commerce protocol, with no web framework.

Build signed payment requests (guide §4.1), verify callbacks and decide the reply
(§4.2), follow a payment through its states, look up CMI's error codes (§6.2), and call
CMI's server-to-server API. Everything here takes plain values and returns frozen
dataclasses; only :class:`CMIClient` does network I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cmi_core.api import (
    APIResult,
    CMIClient,
    HistoryTransaction,
    OrderHistory,
    OrderNotFoundError,
    OrderState,
    OrderStatus,
)
from cmi_core.binding import Binding, BindingError, bind
from cmi_core.callback import (
    CallbackResult,
    Decision,
    KnownPayment,
    Outcome,
    Reply,
    decide_callback,
    verify_callback,
    verify_return,
)
from cmi_core.codes import ERROR_CODES, ErrorCode, lookup, merchant_message, shopper_message
from cmi_core.config import CaptureMode, CMIConfig, Environment
from cmi_core.effects import Action, Effect, EffectKind, allowed_actions, effects
from cmi_core.errors import (
    APIError,
    APITransportError,
    CallbackError,
    CMIError,
    ConfigurationError,
    SignatureError,
    TransitionError,
    ValidationError,
)
from cmi_core.form import render_redirect_form
from cmi_core.hashing import Reading, Verified, compute_hash, hash_plaintext, verify_hash
from cmi_core.money import Currency, format_amount, get_currency, parse_amount
from cmi_core.request import (
    Address,
    LineItem,
    PaymentOrder,
    PaymentRequest,
    build_payment_request,
    validate_request,
)
from cmi_core.states import Event, EventType, PaymentState, PaymentStatus, apply

if TYPE_CHECKING:
    __version__: str


def __getattr__(name: str) -> str:
    """``__version__``, read on first use from the installed metadata (see ``_version``)."""
    if name == "__version__":
        from cmi_core._version import version

        return version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ERROR_CODES",
    "APIError",
    "APIResult",
    "APITransportError",
    "Action",
    "Address",
    "Binding",
    "BindingError",
    "CMIClient",
    "CMIConfig",
    "CMIError",
    "CallbackError",
    "CallbackResult",
    "CaptureMode",
    "ConfigurationError",
    "Currency",
    "Decision",
    "Effect",
    "EffectKind",
    "Environment",
    "ErrorCode",
    "Event",
    "EventType",
    "HistoryTransaction",
    "KnownPayment",
    "LineItem",
    "OrderHistory",
    "OrderNotFoundError",
    "OrderState",
    "OrderStatus",
    "Outcome",
    "PaymentOrder",
    "PaymentRequest",
    "PaymentState",
    "PaymentStatus",
    "Reading",
    "Reply",
    "SignatureError",
    "TransitionError",
    "ValidationError",
    "Verified",
    "__version__",
    "allowed_actions",
    "apply",
    "bind",
    "build_payment_request",
    "compute_hash",
    "decide_callback",
    "effects",
    "format_amount",
    "get_currency",
    "hash_plaintext",
    "lookup",
    "merchant_message",
    "parse_amount",
    "render_redirect_form",
    "shopper_message",
    "validate_request",
    "verify_callback",
    "verify_hash",
    "verify_return",
]
