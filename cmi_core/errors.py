"""The exception hierarchy of cmi-payments.

Every error raised on purpose by the library derives from :class:`CMIError`. Errors carry
their data in attributes and a human message; none of them ever holds a secret (store key,
API password) in its message, its attributes or its ``repr``.
"""

from __future__ import annotations


class CMIError(Exception):
    """Root of every error this library raises on purpose."""


class ConfigurationError(CMIError, ValueError):
    """The configuration is incomplete or invalid (which setting, and why)."""

    def __init__(self, setting: str, rule: str) -> None:
        self.setting = setting
        self.rule = rule
        super().__init__(f"{setting}: {rule}")


class ValidationError(CMIError, ValueError):
    """A payment field breaks a rule of the CMI guide (§4.1.1).

    ``field`` is CMI's field name (``BillToCountry``, ``amount``...), ``rule`` says what was
    expected. The offending value is not repeated: it may be personal data.
    """

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")


class SignatureError(CMIError):
    """A received message has no hash, or a hash that does not match (guide §4.2.4)."""


class CallbackError(CMIError):
    """A callback or return POST is malformed beyond its hash (e.g. unreadable amount)."""


class TransitionError(CMIError):
    """The payment state machine refused an event; nothing was changed."""

    def __init__(self, state: str, event: str, reason: str) -> None:
        self.state = state
        self.event = event
        self.reason = reason
        super().__init__(f"cannot apply {event} in state {state}: {reason}")


class APIError(CMIError):
    """CMI's server-to-server API refused or failed an operation.

    Attributes mirror CMI's answer where there was one: ``response`` (Approved, Declined,
    Error), ``proc_return_code``, ``err_msg`` and ``error_code`` (Extra/ERRORCODE, e.g.
    ``CORE-2008``). ``retryable`` says whether sending the same request again is safe and
    may help; operations that move money are never retried blindly.
    """

    def __init__(
        self,
        message: str,
        *,
        response: str = "",
        proc_return_code: str = "",
        err_msg: str = "",
        error_code: str = "",
        http_status: int | None = None,
        retryable: bool = False,
    ) -> None:
        self.response = response
        self.proc_return_code = proc_return_code
        self.err_msg = err_msg
        self.error_code = error_code
        self.http_status = http_status
        self.retryable = retryable
        super().__init__(message)


class APITransportError(APIError):
    """No usable answer from CMI: timeout, connection error, HTTP error, unreadable body.

    The outcome of the operation is unknown; check the order's status before retrying it.
    """
