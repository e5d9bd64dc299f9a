"""Fault switches: make the callback misbehave the way real networks and CMI do.

A :class:`Fault` is set for one merchant (every order of a ``clientid``) or for one order
(``oid``); the order's switch wins over the merchant's. Switches stay until cleared.

- ``delay``: send the callback ``seconds`` later, in the background; the shopper's
  browser reaches okUrl first.
- ``drop``: never send it (recorded as DROPPED); only the okUrl/failUrl POST arrives.
- ``twice``: send it, then send the same callback again.
- ``concurrent``: send two copies at the same moment.
- ``stale``: after an approved attempt's callback, send an older failed attempt's
  callback of the same order again (a made-up decline if there was none).
- ``corrupt_hash``: send a ``HASH`` that does not match the fields.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["FAULT_NAMES", "Fault", "FaultRegistry"]

FAULT_NAMES = ("delay", "drop", "twice", "concurrent", "stale", "corrupt_hash")


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do to the callbacks of a merchant or an order (combinable)."""

    delay: float = 0.0
    drop: bool = False
    twice: bool = False
    concurrent: bool = False
    stale: bool = False
    corrupt_hash: bool = False

    @classmethod
    def named(cls, name: str, seconds: float = 0.0) -> Fault:
        """``Fault.named("delay", 2)``, ``Fault.named("drop")``...; ``none`` clears."""
        key = name.strip().lower().replace("-", "_")
        if key in ("none", "", "clear"):
            return cls()
        if key == "delay":
            if not 0 < seconds <= 600:
                raise ValueError("delay needs seconds between 0 and 600")
            return cls(delay=seconds)
        if key not in FAULT_NAMES:
            raise ValueError(f"unknown fault {name!r}; one of {', '.join(FAULT_NAMES)}, none")
        return replace(cls(), **{key: True})

    def combine(self, other: Fault) -> Fault:
        return Fault(
            delay=max(self.delay, other.delay),
            drop=self.drop or other.drop,
            twice=self.twice or other.twice,
            concurrent=self.concurrent or other.concurrent,
            stale=self.stale or other.stale,
            corrupt_hash=self.corrupt_hash or other.corrupt_hash,
        )

    @property
    def active(self) -> bool:
        return self != Fault()

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class FaultRegistry:
    """The switches currently set (in memory: a restart clears them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._merchants: dict[str, Fault] = {}
        self._orders: dict[tuple[str | None, str], Fault] = {}

    def set(self, fault: Fault, *, client_id: str | None = None, oid: str | None = None) -> None:
        if client_id is None and oid is None:
            raise ValueError("a fault is set for a client_id, an oid, or both")
        with self._lock:
            if oid is not None:
                table: dict[Any, Fault] = self._orders
                key: Any = (client_id, oid)
            else:
                table, key = self._merchants, client_id
            if fault.active:
                table[key] = fault
            else:
                table.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._merchants.clear()
            self._orders.clear()

    def for_order(self, client_id: str, oid: str) -> Fault:
        with self._lock:
            order = self._orders.get((client_id, oid)) or self._orders.get((None, oid))
            if order is not None:
                return order
            return self._merchants.get(client_id, Fault())

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "merchants": {cid: f.as_dict() for cid, f in self._merchants.items()},
                "orders": [
                    {"client_id": cid, "oid": oid, **f.as_dict()}
                    for (cid, oid), f in self._orders.items()
                ],
            }
