"""The ``cmi`` command: hash, verify, form; one-line errors, never a traceback."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cmi_core.cli import main
from cmi_core.hashing import compute_hash
from cmi_core.testing import make_callback
from tests.core.test_hashing import GUIDE_FIELDS, GUIDE_HASH


def run(argv: list[str], stdin: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(argv)


def test_hash_of_json_and_form_encoding(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["hash", "--store-key", "ABCD1234"], json.dumps(GUIDE_FIELDS), monkeypatch) == 0
    assert capsys.readouterr().out.strip() == GUIDE_HASH
    monkeypatch.setenv("CMI_STORE_KEY", "K")
    assert run(["hash"], "a=1&b=&c=x%7Cy", monkeypatch) == 0
    assert capsys.readouterr().out.strip() == compute_hash({"a": "1", "b": "", "c": "x|y"}, "K")


def test_verify_exit_codes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fields = make_callback("K", oid="A1", amount=__import__("decimal").Decimal("10"))
    assert run(["verify", "--store-key", "K"], json.dumps(fields), monkeypatch) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["valid"] is True
    assert printed["oid"] == "A1"
    assert printed["amount"] == "10.00"
    assert run(["verify", "--store-key", "WRONG"], json.dumps(fields), monkeypatch) == 1
    assert "invalid" in capsys.readouterr().err


def test_form_prints_signed_fields(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CMI_STORE_KEY", "K")
    argv = ["form", "--client-id", "600000001", "--oid", "O-1", "--amount", "12,5"]
    argv += ["--email", "a@b.ma", "--name", "Ali", "--ok-url", "https://s.ma/ok"]
    argv += ["--fail-url", "https://s.ma/ko", "--lang", "en"]
    assert run(argv, "", monkeypatch) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["action"].endswith("/fim/est3dgate")
    assert out["fields"]["amount"] == "12.50"
    assert out["fields"]["hash"] == compute_hash(out["fields"], "K")
    assert run([*argv, "--html"], "", monkeypatch) == 0
    assert "<form" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["hash"], "a=1", "no store key"),
        (["hash", "--store-key", "K"], "{not json", "invalid JSON"),
        (["hash", "--store-key", "K", "/nonexistent/file"], "", "cannot read"),
        (["form", "--client-id", "1", "--store-key", "K"], "", "missing order data"),
        (["status", "--client-id", "1", "O-1"], "", "CMI_API_PASSWORD"),
    ],
)
def test_errors_are_one_line(
    argv: list[str],
    stdin: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("CMI_STORE_KEY", "CMI_API_PASSWORD", "CMI_API_USER", "CMI_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    assert run(argv, stdin, monkeypatch) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_validation_error_exits_1_without_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cmi_core.cli", "form", "--client-id", "1", "--store-key", "K",
         "--oid", "bad oid", "--amount", "1", "--email", "a@b.ma", "--name", "A",
         "--ok-url", "https://s.ma/ok", "--fail-url", "https://s.ma/ko"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == "cmi: oid: letters, digits, '.', '_' and '-' only"


def test_json_numbers_and_booleans_hash_as_posted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = '{"amount": 27.50, "AutoRedirect": true, "qty1": 3, "x": null}'
    assert run(["hash", "--store-key", "k"], text, monkeypatch) == 0
    fields = {"amount": "27.50", "AutoRedirect": "true", "qty1": "3", "x": ""}
    assert capsys.readouterr().out.strip() == compute_hash(fields, "k")


@pytest.mark.parametrize(
    ("stdin", "message"),
    [("[1, 2]", "object"), ('{"a": [1]}', "values must be"), ("a=%ff", "not UTF-8")],
)
def test_unusable_fields_are_refused(
    stdin: str, message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["hash", "--store-key", "k"], stdin, monkeypatch) == 2
    assert message in capsys.readouterr().err


def test_huge_amount_is_one_line_not_a_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cmi_core.cli", "form", "--client-id", "1", "--store-key", "K",
         "--oid", "O-1", "--amount", "1" * 30, "--email", "a@b.ma", "--name", "A",
         "--ok-url", "https://s.ma/ok", "--fail-url", "https://s.ma/ko"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("cmi: amount:")


# -- cmi form --json: every key known, checked, or refused by name (issue #11, item 6) ----

ORDER_JSON = {
    "oid": "O-1",
    "amount": "12.50",
    "email": "a@b.ma",
    "name": "Ali",
    "ok_url": "https://s.ma/ok",
    "fail_url": "https://s.ma/ko",
}


def form_json(
    data: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, dict[str, str] | None]:
    path = tmp_path / "order.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    monkeypatch.setenv("CMI_STORE_KEY", "K")
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    code = run(["form", "--client-id", "600000001", "--json", str(path)], "", monkeypatch)
    return code, json.loads(out.getvalue())["fields"] if code == 0 else None


def test_form_json_takes_items_session_timeout_and_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = {
        **ORDER_JSON,
        "amount": 27.5,
        "items": [{"id": "sku-1", "quantity": 2, "unit_price": "10.00", "description": "Thé"}],
        "session_timeout": 600,
        "extra": {"ShipToName": "Youssef"},
        "billing": {"city": "Casablanca", "country": "504"},
        "auto_redirect": True,
    }
    code, fields = form_json(data, tmp_path, monkeypatch)
    assert code == 0
    assert fields is not None
    assert fields["amount"] == "27.50"
    assert (fields["id1"], fields["qty1"], fields["price1"]) == ("sku-1", "2", "10.00")
    assert fields["sessiontimeout"] == "600"
    assert fields["ShipToName"] == "Youssef"
    assert fields["BillToCity"] == "Casablanca"
    assert fields["AutoRedirect"] == "true"
    assert fields["hash"] == compute_hash(fields, "K")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "--json: unknown key 'colour' (known: oid, amount,"),
        ({"billing": {"zip": "20000"}}, "--json: billing: unknown key 'zip' (known: street1,"),
        ({"items": [{"id": "a", "size": "L"}]}, "--json: items[1]: unknown key 'size'"),
        ({"items": [{"quantity": 1}]}, "--json: items[1]: needs an id"),
        ({"items": {"id": "a"}}, "--json: items: a list of objects"),
        ({"items": ["a"]}, "--json: items[1]: an object"),
        ({"billing": "Casablanca"}, "--json: billing: an object"),
        ({"billing": {"city": 5}}, "--json: billing.city: a string"),
        ({"session_timeout": "600"}, "--json: session_timeout: a whole number of seconds"),
        ({"session_timeout": 60.5}, "--json: session_timeout: a whole number of seconds"),
        ({"session_timeout": True}, "--json: session_timeout: a whole number of seconds"),
        ({"auto_redirect": "yes"}, "--json: auto_redirect: true or false"),
        ({"extra": ["ShipToName"]}, "--json: extra: an object of names to strings"),
        ({"extra": {"ShipToName": 5}}, "--json: extra: an object of names to strings"),
        ({"oid": 12}, "--json: oid: a string"),
        ({"amount": True}, "--json: amount: a decimal amount"),
        ({"amount": [1]}, "--json: amount: a decimal amount"),
    ],
)
def test_form_json_refuses_unknown_keys_and_wrong_types(
    change: dict[str, object],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _ = form_json({**ORDER_JSON, **change}, tmp_path, monkeypatch)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("cmi: " + message)
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"session_timeout": 0}, "cmi: sessiontimeout: whole seconds between 30 and 2700"),
        ({"lang": "FR"}, "cmi: lang: one of 'fr', 'en', 'ar', in lower case"),
        ({"extra": {"Response": "Approved"}}, "cmi: Response: extra fields may not take"),
        ({"extra": {"storeKey": "x"}}, "cmi: storeKey: reserved"),
        ({"extra": {"note": "x" * 256}}, "cmi: note: at most 255 characters"),
    ],
)
def test_form_json_values_that_break_cmis_rules_name_the_field(
    change: dict[str, object],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _ = form_json({**ORDER_JSON, **change}, tmp_path, monkeypatch)
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(message)
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("text", "message"), [("{oops", "--json: invalid JSON"), ("[1]", "--json must hold")]
)
def test_form_json_unreadable_files_are_usage_errors(
    text: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _ = form_json(text, tmp_path, monkeypatch)
    assert code == 2
    assert message in capsys.readouterr().err


def test_form_help_lists_the_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["form", "--help"])
    out = capsys.readouterr().out
    for key in ("items", "session_timeout", "extra", "billing", "postal_code", "unit_price"):
        assert key in out
