"""The merchant's CMI configuration: one frozen, validated, keyword-only object.

Adapters build it from their platform's settings; nothing here reads the environment at
import time. The store key and the API password never appear in ``repr``, in error
messages or in logs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from cmi_core.codes import LANGUAGES
from cmi_core.errors import ConfigurationError
from cmi_core.hashing import Reading, parse_readings
from cmi_core.money import Currency, get_currency

__all__ = ["HOSTS", "CMIConfig", "CaptureMode", "Environment"]

Environment = Literal["test", "production"]
CaptureMode = Literal["auto", "manual"]

#: CMI's hosts (docs/protocol.md#flow). ``base_url`` overrides them, e.g. for ``cmi sandbox``.
HOSTS: dict[str, str] = {
    "test": "https://testpayment.cmi.co.ma",
    "production": "https://payment.cmi.co.ma",
}
GATEWAY_PATH = "/fim/est3dgate"
API_PATH = "/fim/api"

_CLIENT_ID = re.compile(r"^[A-Za-z0-9]{1,15}$")


@dataclass(frozen=True, kw_only=True, slots=True)
class CMIConfig:
    """Everything the core needs to talk to CMI for one merchant (one ``clientid``).

    - ``client_id``: the merchant id CMI assigned (``clientid``, at most 15 characters).
    - ``store_key``: the secret hash key set in CMI's Merchant Center.
    - ``environment``: ``"test"`` (testpayment.cmi.co.ma) or ``"production"``.
    - ``base_url``: another host serving ``/fim/est3dgate`` and ``/fim/api``, such as the
      local emulator (``cmi sandbox``); overrides ``environment``'s host.
    - ``api_username`` / ``api_password``: the API user (an option CMI sells separately),
      needed only for capture, void, refund, status and history.
    - ``currency``: default ISO 4217 currency, numeric or letters (stored numeric).
    - ``lang``: default page language, ``fr``, ``en`` or ``ar``.
    - ``capture_mode``: ``"auto"`` answers approved callbacks ``ACTION=POSTAUTH`` (capture
      now); ``"manual"`` answers ``APPROVED`` and leaves the capture to staff.
    - ``session_timeout``: seconds CMI keeps its payment page open (30 to 2700), or None
      for CMI's default (1800).
    - ``http_timeout``: seconds to connect, and seconds of silence allowed between two
      reads of an API answer.
    - ``api_deadline``: seconds one API call may take in all, from the first connection
      attempt to the last byte of the answer, retries and their waits included. A server
      that drips its answer slowly enough to pass every ``http_timeout`` is still cut off
      here.
    - ``hash_reading``: which reading of the hash rules CMI's results are verified in
      (:class:`~cmi_core.hashing.Reading`: ``"guide"``, ``"kit"``, ``"kit-decoded"``), or
      ``"all"`` (the default: any of them); pin one once the gateway's is known.
    """

    client_id: str
    store_key: str = field(repr=False)
    environment: Environment = "test"
    base_url: str | None = None
    api_username: str = ""
    api_password: str = field(default="", repr=False)
    currency: str = "504"
    lang: str = "fr"
    capture_mode: CaptureMode = "auto"
    session_timeout: int | None = None
    http_timeout: float = 20.0
    api_deadline: float = 30.0
    hash_reading: str = "all"

    def __post_init__(self) -> None:
        if not _CLIENT_ID.match(self.client_id or ""):
            raise ConfigurationError("client_id", "1 to 15 letters or digits, as CMI assigned it")
        if not self.store_key or self.store_key != self.store_key.strip():
            raise ConfigurationError(
                "store_key", "required, without leading or trailing spaces (value not shown)"
            )
        if self.environment not in HOSTS:
            raise ConfigurationError("environment", "'test' or 'production'")
        if self.base_url is not None:
            parts = urlsplit(self.base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigurationError("base_url", "an http(s) URL such as http://127.0.0.1:8765")
            if self.environment == "production" and parts.scheme != "https":
                raise ConfigurationError("base_url", "production requires https")
        if bool(self.api_username) != bool(self.api_password):
            raise ConfigurationError(
                "api_username", "the API user name and password go together (password not shown)"
            )
        try:
            currency = get_currency(self.currency)
        except ValueError as exc:
            raise ConfigurationError("currency", "an ISO 4217 code such as 504 (MAD)") from exc
        object.__setattr__(self, "currency", currency.numeric)
        if self.lang not in LANGUAGES:
            raise ConfigurationError("lang", "'fr', 'en' or 'ar'")
        if self.capture_mode not in ("auto", "manual"):
            raise ConfigurationError("capture_mode", "'auto' or 'manual'")
        if self.session_timeout is not None and not 30 <= self.session_timeout <= 2700:
            raise ConfigurationError("session_timeout", "between 30 and 2700 seconds")
        if not self.http_timeout > 0:
            raise ConfigurationError("http_timeout", "a positive number of seconds")
        if not 0 < self.api_deadline < math.inf:  # NaN fails this too
            raise ConfigurationError("api_deadline", "a positive, finite number of seconds")
        if self.hash_reading is None:  # an empty setting: every reading
            object.__setattr__(self, "hash_reading", "all")
        if not isinstance(self.hash_reading, str):
            raise ConfigurationError("hash_reading", "a reading's name, or 'all'")
        try:
            parse_readings(self.hash_reading)
        except ValueError as exc:
            raise ConfigurationError("hash_reading", str(exc)) from None

    @property
    def host(self) -> str:
        return (self.base_url or HOSTS[self.environment]).rstrip("/")

    @property
    def gateway_url(self) -> str:
        """Where the shopper's browser posts the payment form."""
        return self.host + GATEWAY_PATH

    @property
    def api_url(self) -> str:
        """Where the server-to-server XML API is posted."""
        return self.host + API_PATH

    @property
    def default_currency(self) -> Currency:
        return get_currency(self.currency)

    @property
    def hash_readings(self) -> tuple[Reading, ...]:
        """The readings a result's hash may match in (guide §4.2.4; docs/core.md)."""
        return parse_readings(self.hash_reading)

    @property
    def has_api_user(self) -> bool:
        return bool(self.api_username and self.api_password)
