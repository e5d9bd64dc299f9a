"""The ``cmi`` command: hash, verify, build forms, call the API, run the sandbox.

Secrets come from the environment rather than flags where possible (``CMI_STORE_KEY``,
``CMI_API_PASSWORD``), so they stay out of shell histories and process lists. Every
failure is one line on standard error and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from cmi_core._version import version
from cmi_core.callback import verify_callback
from cmi_core.config import CMIConfig
from cmi_core.errors import CallbackError, CMIError, SignatureError
from cmi_core.form import render_redirect_form
from cmi_core.hashing import compute_hash, hash_plaintext
from cmi_core.jsonable import jsonable as _jsonable
from cmi_core.money import parse_amount
from cmi_core.request import Address, LineItem, PaymentOrder, build_payment_request

__all__ = ["main"]


class UsageError(Exception):
    """A problem with what was typed: exit status 2."""


def read_fields(path: str | None) -> dict[str, str]:
    """Fields from a file or stdin: a JSON object, or ``a=1&b=2`` form encoding."""
    try:
        text = Path(path).read_text(encoding="utf-8") if path else sys.stdin.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError("the fields are not UTF-8 text") from exc
    text = text.strip()
    if text.startswith(("{", "[", '"')):
        try:
            # Numbers are kept as written ("27.50" stays "27.50"), as a form posts them.
            data = json.loads(text, parse_float=str, parse_int=str)
        except json.JSONDecodeError as exc:
            raise UsageError(f"invalid JSON: {exc.msg} (line {exc.lineno})") from exc
        if not isinstance(data, dict):
            raise UsageError("the JSON must be an object of field names to values")
        fields: dict[str, str] = {}
        for name, raw in data.items():
            if isinstance(raw, bool):
                fields[str(name)] = "true" if raw else "false"
            elif raw is None:
                fields[str(name)] = ""
            elif isinstance(raw, str):
                fields[str(name)] = raw
            else:
                raise UsageError(f"field {name!r}: values must be strings, numbers or booleans")
        return fields
    try:
        return dict(parse_qsl(text, keep_blank_values=True, errors="strict"))
    except UnicodeDecodeError as exc:
        raise UsageError("the form-encoded fields are not UTF-8") from exc


def _store_key(args: argparse.Namespace) -> str:
    key: str = args.store_key or os.environ.get("CMI_STORE_KEY", "")
    if not key:
        raise UsageError("no store key: pass --store-key or set CMI_STORE_KEY")
    return key


def _config(args: argparse.Namespace, *, needs_api: bool = False) -> CMIConfig:
    env = os.environ.get
    client_id = args.client_id or env("CMI_CLIENT_ID", "")
    if not client_id:
        raise UsageError("no client id: pass --client-id or set CMI_CLIENT_ID")
    username = getattr(args, "api_user", None) or env("CMI_API_USER", "")
    password = env("CMI_API_PASSWORD", "")
    if needs_api and not (username and password):
        raise UsageError("the API needs CMI_API_USER (or --api-user) and CMI_API_PASSWORD")
    return CMIConfig(
        client_id=client_id,
        store_key=(getattr(args, "store_key", None) or env("CMI_STORE_KEY", "")) or "-",
        environment=args.environment or env("CMI_ENVIRONMENT", "test"),  # type: ignore[arg-type]
        base_url=args.base_url or env("CMI_BASE_URL") or None,
        api_username=username,
        api_password=password,
    )


def _print_json(value: Any) -> None:
    print(json.dumps(_jsonable(value), ensure_ascii=False, indent=2, default=str))


def cmd_hash(args: argparse.Namespace) -> int:
    fields = read_fields(args.file)
    key = _store_key(args)
    if args.plaintext:
        print(hash_plaintext(fields, key))
    print(compute_hash(fields, key))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    fields = read_fields(args.file)
    expected = read_fields(args.request) if args.request else None
    try:
        result = verify_callback(fields, _store_key(args), expected=expected)
    except CallbackError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    except SignatureError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    summary = {k: v for k, v in _jsonable(result).items() if k != "fields"}
    _print_json({"valid": True, **summary})
    return 0


#: ``cmi form --json`` keys -> (PaymentOrder field, kind of value). ``name`` is the
#: billing name; flags of the same name override the file.
ORDER_KEYS: dict[str, tuple[str, str]] = {
    "oid": ("oid", "text"),
    "amount": ("amount", "amount"),
    "email": ("email", "text"),
    "name": ("billing_name", "text"),
    "ok_url": ("ok_url", "text"),
    "fail_url": ("fail_url", "text"),
    "callback_url": ("callback_url", "text"),
    "shop_url": ("shop_url", "text"),
    "currency": ("currency", "text"),
    "lang": ("lang", "text"),
    "description": ("description", "text"),
    "phone": ("phone", "text"),
    "billing": ("billing", "billing"),
    "items": ("items", "items"),
    "session_timeout": ("session_timeout", "seconds"),
    "auto_redirect": ("auto_redirect", "boolean"),
    "currencies_list": ("currencies_list", "boolean"),
    "callback_response": ("callback_response", "boolean"),
    "amount_cur": ("amount_cur", "amount"),
    "symbol_cur": ("symbol_cur", "text"),
    "extra": ("extra", "extra"),
}
BILLING_KEYS = ("street1", "street2", "city", "state", "postal_code", "country", "company")
#: An item's keys -> (LineItem field, kind of value).
ITEM_KEYS: dict[str, tuple[str, str]] = {
    "id": ("id", "text"),
    "description": ("description", "text"),
    "quantity": ("quantity", "quantity"),
    "unit_price": ("unit_price", "amount"),
    "total": ("total", "amount"),
    "item_number": ("item_number", "text"),
    "product_code": ("product_code", "text"),
}
_KINDS = {
    "text": "a string",
    "amount": 'a decimal amount, as a string ("29.95") or a JSON number',
    "quantity": "a positive number",
    "seconds": "a whole number of seconds (30 to 2700)",
    "boolean": "true or false",
    "billing": "an object",
    "items": "a list of objects",
    "extra": "an object of names to strings",
}
FORM_EPILOG = "\n".join(
    [
        "--json FILE holds one JSON object; flags of the same name override its keys:",
        textwrap.fill(", ".join(ORDER_KEYS), 88, initial_indent="  ", subsequent_indent="  "),
        "  billing: an object with " + ", ".join(BILLING_KEYS),
        textwrap.fill(
            "items: a list of objects with " + ", ".join(ITEM_KEYS),
            88,
            initial_indent="  ",
            subsequent_indent="    ",
        ),
        "  session_timeout: whole seconds (30 to 2700); auto_redirect, currencies_list,",
        "  callback_response: true or false; extra: merchant fields (names: letters, digits,",
        "  _ . - up to 64; values: up to 255 characters; not CMI's own field names).",
        "An unknown key or a value of the wrong type is an error naming the key (exit 2);",
        "a field that breaks CMI's rules is an error naming the field (exit 1).",
    ]
)


def _json_value(where: str, kind: str, value: Any) -> Any:
    """Check one ``--json`` value against its kind; return what PaymentOrder takes."""

    def wrong() -> UsageError:
        return UsageError(f"--json: {where}: {_KINDS[kind]}")

    if kind == "text":
        if not isinstance(value, str):
            raise wrong()
        return value
    if kind in ("amount", "quantity"):
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise wrong()
        amount = parse_amount(str(value), where)
        if kind == "quantity" and amount == amount.to_integral_value():
            return int(amount)
        return amount
    if kind == "seconds":
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong()
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise wrong()
        return value
    if kind == "billing":
        if not isinstance(value, dict):
            raise wrong()
        _refuse_unknown(where, value, BILLING_KEYS)
        return Address(**{k: _json_value(f"{where}.{k}", "text", v) for k, v in value.items()})
    if kind == "items":
        if not isinstance(value, list):
            raise wrong()
        items = []
        for number, item in enumerate(value, start=1):
            at = f"{where}[{number}]"
            if not isinstance(item, dict):
                raise UsageError(f"--json: {at}: an object")
            _refuse_unknown(at, item, ITEM_KEYS)
            if "id" not in item:
                raise UsageError(f"--json: {at}: needs an id")
            item_fields = {
                ITEM_KEYS[k][0]: _json_value(f"{at}.{k}", ITEM_KEYS[k][1], v)
                for k, v in item.items()
            }
            items.append(LineItem(**item_fields))
        return items
    # "extra": names and values are checked against CMI's rules when the request is built
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise wrong()
    return dict(value)


def _refuse_unknown(where: str, data: dict[str, Any], known: Iterable[str]) -> None:
    unknown = [str(key) for key in data if key not in known]
    if unknown:
        prefix = f"{where}: " if where else ""
        raise UsageError(
            f"--json: {prefix}unknown key {unknown[0][:64]!r} (known: {', '.join(known)})"
        )


def _order_json(path: str) -> dict[str, Any]:
    """Read ``cmi form --json``: one object of :data:`ORDER_KEYS`, checked key by key."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"--json: {path} is not UTF-8 text") from exc
    try:
        # Decimal, never float: an amount stays exactly as written.
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--json: invalid JSON: {exc.msg} (line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise UsageError("--json must hold an object")
    _refuse_unknown("", data, ORDER_KEYS)
    return {key: _json_value(key, ORDER_KEYS[key][1], value) for key, value in data.items()}


def cmd_form(args: argparse.Namespace) -> int:
    data: dict[str, Any] = _order_json(args.json) if args.json else {}
    for name in ("oid", "amount", "email", "name", "ok_url", "fail_url", "callback_url"):
        if getattr(args, name):
            data[name] = getattr(args, name)
    for name in ("shop_url", "currency", "lang", "description", "phone"):
        if getattr(args, name):
            data[name] = getattr(args, name)
    required = ("oid", "amount", "email", "name", "ok_url", "fail_url")
    missing = ["--" + name.replace("_", "-") for name in required if data.get(name) in (None, "")]
    if missing:
        raise UsageError("missing order data: " + ", ".join(missing))
    config = _config(args)
    if config.store_key == "-":
        raise UsageError("no store key: pass --store-key or set CMI_STORE_KEY")
    if isinstance(data["amount"], str):  # from a flag
        data["amount"] = parse_amount(data["amount"])
    order = PaymentOrder(**{ORDER_KEYS[key][0]: value for key, value in data.items()})
    request = build_payment_request(config, order)
    if args.html:
        print(render_redirect_form(request), end="")
    else:
        _print_json({"action": request.action, "fields": dict(request.fields)})
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    from cmi_core.api import CMIClient  # the API client needs requests: import on use

    client = CMIClient(_config(args, needs_api=True))
    amount = parse_amount(args.amount) if getattr(args, "amount", None) else None
    operations: dict[str, Callable[[], Any]] = {
        "status": lambda: client.status(args.oid),
        "history": lambda: client.history(args.oid),
        "capture": lambda: client.capture(args.oid, amount),
        "void": lambda: client.void(args.oid),
        "refund": lambda: client.refund(args.oid, _required(amount)),
    }
    _print_json(operations[args.command]())
    return 0


def _required(amount: Decimal | None) -> Decimal:
    if amount is None:
        raise UsageError("refund needs --amount")
    return amount


def _connection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--client-id", help="CMI client id (default: $CMI_CLIENT_ID)")
    parser.add_argument("--environment", choices=("test", "production"), help="CMI host")
    parser.add_argument("--base-url", help="another host, e.g. http://127.0.0.1:8765 (sandbox)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cmi", description="CMI payments from the shell.")
    parser.add_argument("--version", action="version", version=f"cmi-payments {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    hashing = commands.add_parser("hash", help="print the ver3 hash of fields (JSON or a=1&b=2)")
    hashing.add_argument("file", nargs="?", help="fields file (default: standard input)")
    hashing.add_argument("--store-key", help="the store key (default: $CMI_STORE_KEY)")
    hashing.add_argument("--plaintext", action="store_true", help="print the plaintext too")
    hashing.set_defaults(run=cmd_hash)

    verify = commands.add_parser("verify", help="check the HASH of received fields (exit 0/1)")
    verify.add_argument("file", nargs="?", help="fields file (default: standard input)")
    verify.add_argument("--store-key", help="the store key (default: $CMI_STORE_KEY)")
    verify.add_argument(
        "--request",
        help="the signed request's fields file: check the result is bound to it (binding)",
    )
    verify.set_defaults(run=cmd_verify)

    form = commands.add_parser(
        "form",
        help="print a signed payment request",
        epilog=FORM_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _connection_flags(form)
    form.add_argument("--store-key", help="the store key (default: $CMI_STORE_KEY)")
    form.add_argument("--json", help="order data as a JSON file (flags override it)")
    for flag in ("oid", "amount", "email", "name", "ok-url", "fail-url", "callback-url"):
        form.add_argument(f"--{flag}")
    for flag in ("shop-url", "currency", "lang", "description", "phone"):
        form.add_argument(f"--{flag}")
    form.add_argument("--html", action="store_true", help="print the auto-submitting page")
    form.set_defaults(run=cmd_form)

    for name, text in (
        ("status", "ask CMI for an order's status (ORDERSTATUS)"),
        ("history", "list an order's transactions (ORDERHISTORY)"),
        ("capture", "capture a pre-authorised order (PostAuth)"),
        ("void", "cancel a pre-authorised or same-day order (Void)"),
        ("refund", "refund a captured order (Credit)"),
    ):
        api = commands.add_parser(name, help=text + "; password from $CMI_API_PASSWORD")
        _connection_flags(api)
        api.add_argument("--api-user", help="API user name (default: $CMI_API_USER)")
        api.add_argument("oid", help="the order id (oid)")
        if name in ("capture", "refund"):
            api.add_argument("--amount", help="amount (capture: default all authorised)")
        api.set_defaults(run=cmd_api)

    from cmi_core.sandbox import build_cli_parser  # standard library only, like the rest

    build_cli_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except UsageError as exc:
        print(f"cmi: {exc}", file=sys.stderr)
        return 2
    except CMIError as exc:
        print(f"cmi: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"cmi: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        print(f"cmi: invalid input: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
