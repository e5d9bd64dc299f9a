"""The commands the deployment docs tell an operator to type work after the docs' install line.

Every shell block of docs/saleor.md, docs/installation.md and the Saleor example's README
is read: each ``pip install "cmi-payments[...]"`` must name extras pyproject.toml defines,
and each command after it must be served by what those extras install: ``gunicorn`` by
the gunicorn distribution, a PostgreSQL ``DATABASE_URL`` by a PostgreSQL driver, a
``python <file>`` or ``gunicorn <module>`` by a file of this repository. A block without
an install line follows the document's earlier install lines; without any, or typed as
``.venv/bin/...``, it runs in the development environment (``dev.py``: ``.[dev,all]``).
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
DOCS = ["docs/saleor.md", "docs/installation.md", "examples/saleor_app/README.md"]
#: What the development environment installs (dev.py).
DEVELOPMENT = frozenset({"dev", "all"})
#: Commands of the shell or of Python itself: nothing to install.
BUILTIN = {"cd", "export", "pip", "python", "python3"}
#: Console scripts -> the distribution that installs them.
SCRIPTS = {"gunicorn": "gunicorn", "cmi": "cmi-payments"}
#: ``python -m <module>`` -> the distribution that installs the module.
MODULES = {"pytest": "pytest", "pip": "pip"}
#: URL schemes of ``DATABASE_URL`` -> a distribution Django can use for them.
DRIVERS = {"postgresql": {"psycopg", "psycopg2", "psycopg-binary", "psycopg2-binary"}}
DRIVERS["postgres"] = DRIVERS["postgresql"]


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_by(extras: frozenset[str]) -> set[str]:
    """The distributions ``pip install "cmi-payments[<extras>]"`` installs (names only)."""
    found = {"cmi-payments", "pip"}
    todo = list(extras)
    seen: set[str] = set()
    for requirement in PROJECT["dependencies"]:
        found.add(normal(Requirement(requirement).name))
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in PROJECT["optional-dependencies"][extra]:
            requirement = Requirement(line)
            name = normal(requirement.name)
            if name == "cmi-payments":
                todo.extend(requirement.extras)
            else:
                found.add(name)
    return found


@dataclass
class Block:
    """One shell block of a document: its commands, as the operator types them."""

    doc: str
    commands: list[str] = field(default_factory=list)


def blocks(doc: str) -> list[Block]:
    found: list[Block] = []
    current: Block | None = None
    console = False
    pending = ""
    for raw in (ROOT / doc).read_text(encoding="utf-8").splitlines():
        line = raw
        fence = re.match(r"^```(\w*)", line)
        if fence:
            if current is None and fence.group(1) in ("console", "sh", "bash", "shell"):
                current, console = Block(doc), fence.group(1) == "console"
            elif current is not None:
                found.append(current)
                current = None
            continue
        if current is None:
            continue
        if pending:
            line, pending = pending + " " + line.strip(), ""
        elif console:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1]
            continue
        text = re.split(r"\s+#\s", line, maxsplit=1)[0].strip()
        if text and not text.startswith("#"):
            current.commands.extend(part.strip() for part in text.split("&&"))
    return found


def extras_of(words: list[str]) -> list[frozenset[str]]:
    """The extras of every ``cmi-payments[...]`` / ``.[...]`` a pip install names."""
    named = []
    for word in words:
        match = re.fullmatch(r"(?:cmi-payments|\.)\[([\w,-]+)\]", word)
        if match:
            named.append(frozenset(match.group(1).split(",")))
        elif word == "cmi-payments":
            named.append(frozenset())
    return named


def problems(block: Block, earlier: list[frozenset[str]]) -> list[str]:
    """What in ``block`` would not work as typed after its install lines (else the
    install lines of the document's earlier blocks, ``earlier``, which grows)."""
    found: list[str] = []
    installs: list[frozenset[str]] = []
    for command in block.commands:
        words = shlex.split(command)
        if words[:2] == ["pip", "install"] or words[1:4] == ["pip", "install", "--no-binary"]:
            installs.extend(extras_of(words))
    for extras in installs:
        unknown = extras - set(PROJECT["optional-dependencies"])
        if unknown:
            found.append(f"{block.doc}: pip install names unknown extras {sorted(unknown)}")
    earlier.extend(installs)
    installs = installs or earlier
    have = set().union(*(installed_by(e) for e in installs)) if installs else set()
    if not installs:
        have = installed_by(DEVELOPMENT)
    cwd = ROOT
    for command in block.commands:
        words = shlex.split(command)
        if words and words[0] == "export":
            words = words[1:]
        env = {}
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        scheme = env.get("DATABASE_URL", "").partition("://")[0]
        if scheme and scheme in DRIVERS and not DRIVERS[scheme] & have:
            found.append(f"{block.doc}: DATABASE_URL={scheme}://... but no driver is installed")
        if not words or words[0].startswith("("):  # assignments only, or "(same command)"
            continue
        program = words[0].rsplit("/", 1)[-1]
        if words[0].startswith(".venv/"):
            have = have | installed_by(DEVELOPMENT)
        if program == "cd":
            cwd = cwd / words[1]
            if not cwd.is_dir():
                found.append(f"{block.doc}: cd {words[1]}: no such folder")
        elif program in SCRIPTS:
            if normal(SCRIPTS[program]) not in have:
                found.append(f"{block.doc}: `{command}` needs {SCRIPTS[program]}, not installed")
            if program == "gunicorn":
                module = next(w for w in words[1:] if not w.startswith("-"))
                path = cwd / (module.split(":")[0].replace(".", "/") + ".py")
                if not path.is_file():
                    found.append(f"{block.doc}: `{command}`: no {path.relative_to(ROOT)}")
        elif program in ("python", "python3"):
            if words[1] == "-m" and normal(MODULES.get(words[2], "?")) not in have:
                found.append(f"{block.doc}: `{command}` needs {words[2]}, not installed")
            elif words[1] not in ("-m", "-c") and not (cwd / words[1]).is_file():
                found.append(f"{block.doc}: `{command}`: no file {words[1]}")
        elif program not in BUILTIN:
            found.append(f"{block.doc}: `{command}`: unknown program {program}")
    return found


@pytest.mark.parametrize("doc", DOCS)
def test_every_documented_command_is_installed_by_the_documented_extras(doc: str) -> None:
    found = blocks(doc)
    assert found, f"no shell block in {doc}"
    earlier: list[frozenset[str]] = []
    assert [p for block in found for p in problems(block, earlier)] == []


def test_the_serve_extra_brings_the_database_driver_and_gunicorn() -> None:
    served = installed_by(frozenset({"saleor", "serve"}))
    assert {"gunicorn", "psycopg", "pyjwt", "django"} <= served
    assert "gunicorn" not in installed_by(frozenset({"saleor"}))  # the reason for the extra
