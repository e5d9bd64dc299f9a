"""Which ``Host`` names the emulator answers: its defence against DNS rebinding.

A web page on ``attacker.example`` whose DNS name is re-pointed to ``127.0.0.1`` is
same-origin with itself: its scripts may then read and drive the emulator (switch faults
on, read the Merchant Center, resend callbacks) and ``Origin`` checks see nothing wrong.
What they cannot change is the ``Host`` header the browser sends: ``attacker.example``.
So every request must name a host the emulator is known to be reached under:

- ``localhost`` (and ``localhost.``);
- any IP address literal: ``127.0.0.1``, ``[::1]`` (or bare ``::1``), the LAN or docker
  address of a sandbox bound on ``0.0.0.0``. An address is not a DNS name, so it cannot
  be rebound: only a page served from that very address has it as its origin;
- the ``--host`` the emulator listens on, when it is a name (``--host myhost.lan``);
- the names the operator adds (``--allowed-host``, ``"allowed_hosts"`` in the config
  file, ``Sandbox(allowed_hosts=...)``): a name, ``.example.test`` for that name and
  every name under it, or ``*`` for any name (which turns the protection off).

Ports are not compared (``localhost:8765`` is ``localhost``): a docker port mapping or a
proxy changes them. Names are compared without regard to case and to one trailing dot.
An HTTP/1.1 request without a ``Host`` (or with two) is refused too; HTTP/1.0 may omit it.
A request in absolute form (``POST http://name/...``) must name an allowed host as well.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["WILDCARD_BINDS", "HostPolicy", "Refusal", "host_name", "normalize_allowed_host"]

#: Listening addresses that mean "every interface": they name no host.
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - names, not binds
_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
_HOST_NAME = re.compile(r"(?P<name>[A-Za-z0-9._-]+)(?::(?P<port>[0-9]{0,5}))?")
_HOST_IPV6 = re.compile(r"\[(?P<address>[^\[\]]+)\](?::(?P<port>[0-9]{0,5}))?")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is not served: its HTTP status and a short plain-text reason."""

    status: int
    message: str


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _shown(value: str) -> str:
    """The client's value, printable and short, for a message or a log line."""
    cleaned = "".join(c if c.isprintable() and c.isascii() else "?" for c in value)
    return repr(cleaned[:80] + ("..." if len(cleaned) > 80 else ""))


def host_name(value: str) -> str | None:
    """The host of a ``Host`` value, lower case, without port or brackets; None if malformed.

    ``localhost:8765`` -> ``localhost``, ``[::1]:8765`` -> ``::1``, ``::1`` -> ``::1``,
    ``Example.TEST.`` -> ``example.test``.
    """
    value = value.strip()
    ipv6 = _HOST_IPV6.fullmatch(value)
    if ipv6 is not None:
        address = unquote(ipv6.group("address"))  # a zone id is written %25eth0
        if not _is_address(address) or ipaddress.ip_address(address).version != 6:
            return None
        return address.lower()
    if ":" in value and _is_address(value):  # "::1": an IPv6 address sent without brackets
        return value.lower()
    match = _HOST_NAME.fullmatch(value)
    if match is None:
        return None
    name = match.group("name").lower()
    if name.endswith("."):
        name = name[:-1]
    if not name or name.startswith(".") or ".." in name:
        return None
    return name


def normalize_allowed_host(name: str) -> str:
    """An operator's ``--allowed-host`` value, checked: ``Sandbox.Test.`` -> ``sandbox.test``.

    A host name (ASCII; use the ``xn--`` form of an international name), an IP address
    (``[::1]`` or ``::1``), ``.example.test`` (that name and every name under it) or
    ``*`` (any name). No scheme, port or path: ``ValueError`` says so.
    """
    text = name.strip().lower()
    if text == "*":
        return text
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if _is_address(text):
        return str(ipaddress.ip_address(text))
    suffix = text.startswith(".")
    body = text[1:] if suffix else text
    if not _NAME.fullmatch(body):
        raise ValueError(
            f"allowed host {name!r}: expected a host name, an IP address, .domain or *"
            " (no scheme, port or path)"
        )
    return ("." if suffix else "") + body.rstrip(".")


class HostPolicy:
    """The ``Host`` names a sandbox listening on ``bind`` answers (see the module doc)."""

    def __init__(self, bind: str = "127.0.0.1", allowed: Iterable[str] = ()) -> None:
        names = {"localhost", "127.0.0.1", "::1"}
        bound = bind.strip().lower().strip("[]")
        if bound not in WILDCARD_BINDS:
            names.add(normalize_allowed_host(bound))
        extra = [normalize_allowed_host(item) for item in allowed]
        self.any_host = "*" in extra
        self.names = frozenset(names | {x for x in extra if x != "*" and not x.startswith(".")})
        self.domains = tuple(sorted({x for x in extra if x.startswith(".")}))
        self.configured = tuple(dict.fromkeys(extra))

    def allows(self, host: str) -> bool:
        """Is ``host`` (as :func:`host_name` returns it) one of ours?"""
        if self.any_host or host in self.names or _is_address(host):
            return True
        return any(host == domain[1:] or host.endswith(domain) for domain in self.domains)

    def describe(self) -> str:
        """For the banner: ``localhost, IP addresses, sandbox.test, .docker.internal``."""
        named = sorted(n for n in self.names if n != "localhost" and not _is_address(n))
        parts = ["localhost", "IP addresses", *named, *self.domains]
        if self.any_host:
            parts.append("* (any host: the DNS rebinding check is off)")
        return ", ".join(parts)

    def check(self, hosts: list[str], http_version: str, target: str = "") -> Refusal | None:
        """None when the request may be served; else why not.

        ``hosts`` are the request's ``Host`` header values, ``http_version`` its
        ``HTTP/1.1``, ``target`` its request target (``/path`` or ``http://name/path``).
        """
        if len(hosts) > 1:
            return Refusal(400, "More than one Host header.")
        if not hosts:
            if http_version in ("HTTP/0.9", "HTTP/1.0"):
                return self._check_target(target)
            return Refusal(400, "An HTTP/1.1 request needs a Host header.")
        name = host_name(hosts[0])
        if name is None:
            return Refusal(400, f"Malformed Host header {_shown(hosts[0])}.")
        if not self.allows(name):
            return self._refuse(name)
        return self._check_target(target)

    def _check_target(self, target: str) -> Refusal | None:
        """An absolute-form target (``POST http://name/path``) overrides ``Host``."""
        if not target.lower().startswith(("http://", "https://")):
            return None
        authority = urlsplit(target).netloc.rpartition("@")[2]
        name = host_name(authority)
        if name is None:
            return Refusal(400, f"Malformed request target {_shown(target)}.")
        return None if self.allows(name) else self._refuse(name)

    @staticmethod
    def _refuse(name: str) -> Refusal:
        return Refusal(
            421,
            f"cmi sandbox: host {_shown(name)} is not one of this emulator's names"
            " (a protection against DNS rebinding). Use http://127.0.0.1 or http://localhost,"
            " or start the sandbox with --allowed-host NAME for a name of your own.",
        )
