"""Time in the emulator: one injectable clock, and CMI's local time zone.

Everything that depends on time (session expiry, ``EXTRA.TRXDATE``, the same-day rule of
Void) reads :attr:`Sandbox.clock`, so tests move time forward with :class:`ManualClock`
instead of sleeping.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["CASABLANCA", "Clock", "ManualClock", "SystemClock", "local"]


def _casablanca() -> tzinfo:
    try:
        return ZoneInfo("Africa/Casablanca")
    except ZoneInfoNotFoundError:  # no tz database: Morocco keeps UTC+1 most of the year
        return timezone(timedelta(hours=1), "+01")


#: CMI's dates (``EXTRA.TRXDATE``, the API's ``TRXDATE``) are Moroccan local time.
CASABLANCA = _casablanca()


class Clock(Protocol):
    """Anything with ``now()`` returning an aware datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real time (UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (for tests): ``clock.advance(days=1)``."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime.now(UTC)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0, *, days: float = 0) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds, days=days)
            return self._now

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        with self._lock:
            self._now = moment


def local(moment: datetime) -> datetime:
    """The moment in Moroccan local time."""
    return moment.astimezone(CASABLANCA)
