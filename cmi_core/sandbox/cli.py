"""``cmi sandbox``: run the emulator from the command line.

``cmi sandbox [--host H] [--port 8765] [--data-dir ./.cmi-sandbox]
[--merchant CLIENT_ID:STORE_KEY[:API_USER:API_PASSWORD]]... [--allowed-host NAME]...
[--config FILE] [--reading guide|kit|kit-decoded]``

Prints the merchants' credentials and the URLs to use, then serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cmi_core.hashing import ALL_READINGS, Reading
from cmi_core.sandbox.cards import CHALLENGE_CODE, TEST_CARDS
from cmi_core.sandbox.merchants import (
    DEFAULT_MERCHANT,
    Merchant,
    load_merchants_file,
    parse_merchant_spec,
)
from cmi_core.sandbox.server import Sandbox

__all__ = ["add_arguments", "build_cli_parser", "main", "run"]

DEFAULT_PORT = 8765
DEFAULT_DATA_DIR = ".cmi-sandbox"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=None, help=f"port (default {DEFAULT_PORT}; 0 = any free)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"where the SQLite file lives (default ./{DEFAULT_DATA_DIR})",
    )
    parser.add_argument(
        "--merchant",
        action="append",
        default=[],
        metavar="CLIENT_ID:STORE_KEY[:API_USER:API_PASSWORD]",
        help="a merchant account (repeatable); default: the built-in test merchant",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another Host name the sandbox is reached under (repeatable): NAME, .DOMAIN for "
        "it and its subdomains, * for any; localhost, IP addresses and --host always are",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help='JSON file: {"merchants": [{"client_id", "store_key", "api_username", '
        '"api_password", "name"}], "host", "port", "data_dir", "allowed_hosts"}',
    )
    parser.add_argument(
        "--reading",
        choices=[reading.value for reading in ALL_READINGS],
        default=None,
        help="the reading of the hash rules to emulate (default guide): 'kit' hashes "
        "'document' as CMI's PHP kits do; 'kit-decoded' also posts results HTML-encoded "
        "(docs/sandbox.md)",
    )
    parser.add_argument(
        "--callback-timeout", type=float, default=10.0, help="seconds to wait for a callback reply"
    )


def build_cli_parser(subparsers: Any | None = None) -> argparse.ArgumentParser:
    """The ``sandbox`` parser, standalone or added to ``subparsers``."""
    description = "Run the local CMI emulator (hosted payment page, callbacks, XML API)."
    if subparsers is None:
        parser = argparse.ArgumentParser(prog="cmi sandbox", description=description)
    else:
        parser = subparsers.add_parser("sandbox", help=description, description=description)
    add_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def _sandbox_from_args(args: argparse.Namespace) -> Sandbox:
    merchants: list[Merchant] = []
    settings: dict[str, Any] = {}
    if args.config is not None:
        merchants, settings = load_merchants_file(args.config)
    merchants += [parse_merchant_spec(spec) for spec in args.merchant]
    host = args.host or settings.get("host") or "127.0.0.1"
    port = args.port if args.port is not None else int(settings.get("port", DEFAULT_PORT))
    data_dir = args.data_dir or Path(settings.get("data_dir", DEFAULT_DATA_DIR))
    return Sandbox(
        host=host,
        port=port,
        data_dir=data_dir,
        merchants=merchants or [DEFAULT_MERCHANT],
        callback_timeout=args.callback_timeout,
        allowed_hosts=[*settings.get("allowed_hosts", []), *args.allowed_host],
        reading=Reading(args.reading or settings.get("reading", Reading.GUIDE.value)),
    )


def banner(sandbox: Sandbox) -> str:
    lines = [f"cmi sandbox listening on {sandbox.base_url}", ""]
    for merchant in sandbox.merchants().values():
        lines += [
            f"  merchant        {merchant.name}",
            f"  client id       {merchant.client_id}",
            f"  store key       {merchant.store_key}",
        ]
        if merchant.api_username:
            lines += [
                f"  API user        {merchant.api_username}",
                f"  API password    {merchant.api_password}",
            ]
        lines.append("")
    lines += [
        f"  gateway         {sandbox.gateway_url}",
        f"  XML API         {sandbox.api_url}",
        f"  demo shop       {sandbox.base_url}/demo/",
        f"  merchant center {sandbox.base_url}/merchant/",
        f"  data            {sandbox.store.path}",
        f"  Host names      {sandbox.host_policy.describe()}",
        f"  hash reading    {sandbox.reading.value}",
        "",
        (
            f"  approved card   {TEST_CARDS[0].pan}, any future expiry, any CVV;"
            f" 3-D Secure code {CHALLENGE_CODE}"
        ),
        "  (all test cards: docs/sandbox.md). Ctrl-C stops.",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        sandbox = _sandbox_from_args(args)
    except (OSError, ValueError) as exc:
        print(f"cmi sandbox: {exc}", file=sys.stderr)  # noqa: T201 - a command line prints
        return 2
    try:
        sandbox._bind()
    except OSError as exc:
        sandbox.stop()
        print(f"cmi sandbox: cannot listen: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    print(banner(sandbox), flush=True)  # noqa: T201
    try:
        sandbox.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``cmi sandbox`` (and ``python -m cmi_core.sandbox``)."""
    args = build_cli_parser().parse_args(list(argv) if argv is not None else None)
    return run(args)
