"""The merchants the emulator knows: client id, store key, API user, shop name.

CMI gives each merchant a ``clientid``, a store key (set in the Merchant Center, used for
the ``ver3`` hash, guide §4.1.3) and, as an option, an API user for the XML API
(docs/protocol.md#the-xml-api). The emulator starts with :data:`DEFAULT_MERCHANT` unless
told otherwise, from ``--merchant`` flags or a JSON file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_MERCHANT",
    "Merchant",
    "load_merchants_file",
    "parse_merchant_spec",
]

_CLIENT_ID = re.compile(r"^[A-Za-z0-9]{1,15}$")
#: The config file's settings besides "merchants".
SETTINGS = ("host", "port", "data_dir", "allowed_hosts", "reading")


@dataclass(frozen=True, slots=True)
class Merchant:
    """One merchant account of the emulator (secrets hidden from ``repr``)."""

    client_id: str
    store_key: str = field(repr=False)
    api_username: str = ""
    api_password: str = field(default="", repr=False)
    name: str = "Marchand Test"

    def __post_init__(self) -> None:
        if not _CLIENT_ID.match(self.client_id):
            raise ValueError("client_id: 1 to 15 letters or digits")
        if not self.store_key or self.store_key != self.store_key.strip():
            raise ValueError("store_key: required, without leading or trailing spaces")
        if bool(self.api_username) != bool(self.api_password):
            raise ValueError("api_username and api_password go together")


#: The test merchant the emulator starts with; ``cmi sandbox`` prints these values.
DEFAULT_MERCHANT = Merchant(
    client_id="600000001",
    store_key="TEST-STORE-KEY-0001",
    api_username="sandbox_api",
    api_password="sandbox-api-password",  # noqa: S106 - a published test credential
    name="Boutique Test Sandbox",
)


def parse_merchant_spec(spec: str) -> Merchant:
    """``CLIENT_ID:STORE_KEY[:API_USER:API_PASSWORD[:NAME]]`` -> :class:`Merchant`."""
    parts = spec.split(":")
    if len(parts) not in (2, 4, 5):
        raise ValueError("expected CLIENT_ID:STORE_KEY[:API_USER:API_PASSWORD[:NAME]]")
    client_id, store_key = parts[0], parts[1]
    user, password = (parts[2], parts[3]) if len(parts) >= 4 else ("", "")
    name = parts[4] if len(parts) == 5 else f"Marchand {client_id}"
    return Merchant(client_id, store_key, user, password, name)


def _merchant_from_json(item: Mapping[str, Any]) -> Merchant:
    try:
        return Merchant(
            client_id=str(item["client_id"]),
            store_key=str(item["store_key"]),
            api_username=str(item.get("api_username", "")),
            api_password=str(item.get("api_password", "")),
            name=str(item.get("name", f"Marchand {item['client_id']}")),
        )
    except KeyError as exc:
        raise ValueError(f"merchant entry without {exc.args[0]!r}") from exc


def load_merchants_file(path: Path) -> tuple[list[Merchant], dict[str, Any]]:
    """Read a JSON config: ``{"merchants": [{...}], "host": ..., "port": ...}``.

    Returns the merchants and the remaining settings (host, port, data_dir,
    allowed_hosts: a list of host names, reading: the hash reading to emulate).
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("the config file must hold a JSON object")
    entries = data.get("merchants", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError('"merchants" must be a list of objects')
    merchants = [_merchant_from_json(entry) for entry in entries]
    settings = {k: v for k, v in data.items() if k in SETTINGS}
    hosts = settings.get("allowed_hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise ValueError('"allowed_hosts" must be a list of host names')
    return merchants, settings


def index_merchants(merchants: Iterable[Merchant]) -> dict[str, Merchant]:
    """Merchants by client id; a repeated client id is an error."""
    found: dict[str, Merchant] = {}
    for merchant in merchants:
        if merchant.client_id in found:
            raise ValueError(f"client id {merchant.client_id} is configured twice")
        found[merchant.client_id] = merchant
    return found
