#!/usr/bin/env python3
"""Set up and run cmi-payments from a fresh clone, with nothing but Python 3.11+.

    python3 dev.py demo    # the demo: an Oscar shop paying through the local CMI emulator
                           # (--wagtail: the example Wagtail site beside it, on port 8001)
    python3 dev.py test    # the whole test suite (lint, types, tests), as CI runs it

The first run creates ``.venv/`` and installs the project into it; later runs reuse it
until ``pyproject.toml`` changes. ``test --require-services`` (what ``.ci/run`` uses)
turns a missing Chromium or PostgreSQL into a failure instead of a skip.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
MAIN_ENV = ROOT / ".venv"
CORE_ENV = ROOT / ".venv-core"  # no Django: proves the core imports no framework
MAIN_EXTRAS = "dev,all"
CORE_EXTRAS = "test"


def bin_path(env: Path, name: str) -> str:
    folder = "Scripts" if os.name == "nt" else "bin"
    return str(env / folder / name)


def ensure_env(env: Path, extras: str) -> None:
    """Create the virtual environment and install the project, unless already current."""
    stamp = env / ".cmi-installed"
    # The C accelerator is built at install time: a changed source needs a re-install.
    sources = (ROOT / "pyproject.toml").read_bytes() + (ROOT / "cmi_core/_speedups.c").read_bytes()
    digest = hashlib.sha256(sources + extras.encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    if not env.exists():
        print(f"dev.py: creating {env.name}/", flush=True)
        venv.EnvBuilder(with_pip=True).create(env)
    python = bin_path(env, "python")
    run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"])
    print(f"dev.py: installing cmi-payments[{extras}] into {env.name}/", flush=True)
    run([python, "-m", "pip", "install", "-q", "-e", f".[{extras}]"])
    stamp.write_text(digest)


def run(command: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        print(f"dev.py: failed ({result.returncode}): {' '.join(command)}", flush=True)
        sys.exit(result.returncode)


#: (name, test folder, Django settings module or None). Folders not yet present are skipped.
SUITES = [
    ("core and sandbox", "tests/core tests/sandbox", None),
    ("shared Django layer", "tests/adapters/django", "tests.adapters.django.settings"),
    ("Oscar", "tests/adapters/oscar", "tests.adapters.oscar.settings"),
    ("Saleor", "tests/adapters/saleor", "tests.adapters.saleor.settings"),
    ("Wagtail", "tests/adapters/wagtail", "tests.adapters.wagtail.settings"),
]


def start_postgres(require: bool) -> object | None:
    """A throw-away PostgreSQL server, or None (a failure when services are required)."""
    sys.path.insert(0, str(ROOT))
    from tests.pgserver import PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        message = "PostgreSQL not found (apt-get install postgresql)"
        if require:
            print(f"dev.py: required service missing: {message}", flush=True)
            sys.exit(1)
        print(f"dev.py: {message}: the PostgreSQL passes are skipped", flush=True)
        return None
    server = PostgresServer(bindir)
    server.start()
    print(f"dev.py: PostgreSQL {bindir.parent.name} started on port {server.port}", flush=True)
    return server


def test(args: list[str]) -> None:
    require = "--require-services" in args
    pytest_args = [a for a in args if a != "--require-services"]
    env = dict(os.environ)
    if require:
        env["CMI_REQUIRE_SERVICES"] = "1"
    ensure_env(MAIN_ENV, MAIN_EXTRAS)
    python = bin_path(MAIN_ENV, "python")
    if pytest_args:  # e.g. python3 dev.py test tests/core -k hash
        run([python, "-m", "pytest", *pytest_args], env)
        return
    print("dev.py: ruff, ruff format, mypy --strict", flush=True)
    run([python, "-m", "ruff", "check", "."])
    run([python, "-m", "ruff", "format", "--check", "."])
    run([python, "-m", "mypy"])
    print("dev.py: the core suite without Django", flush=True)
    ensure_env(CORE_ENV, CORE_EXTRAS)
    core_python = bin_path(CORE_ENV, "python")
    no_django = "import importlib.util as u, sys; sys.exit(u.find_spec('django') is not None)"
    run([core_python, "-c", no_django])
    run([core_python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/core"], env)
    postgres = None
    if any(settings and (ROOT / folder).exists() for _, folder, settings in SUITES):
        postgres = start_postgres(require)
    try:
        for name, folders, settings in SUITES:
            paths = [f for f in folders.split() if (ROOT / f).exists()]
            if not paths:
                continue
            print(f"dev.py: {name} (SQLite)" if settings else f"dev.py: {name}", flush=True)
            extra = ["--ds", settings] if settings else []
            run([python, "-m", "pytest", "-q", *extra, *paths], env)
            if settings and postgres is not None:
                print(f"dev.py: {name} (PostgreSQL)", flush=True)
                pg_env = {
                    **env,
                    "CMI_TEST_DATABASE": "postgres",
                    "CMI_TEST_POSTGRES_DSN": postgres.dsn,  # type: ignore[attr-defined]
                }
                # The browser flows do not depend on the database: once is enough.
                run([python, "-m", "pytest", "-q", "-m", "not browser", *extra, *paths], pg_env)
    finally:
        if postgres is not None:
            postgres.stop()  # type: ignore[attr-defined]


def demo(args: list[str]) -> None:
    """The Oscar demo shop and the CMI emulator.

    ``--wagtail`` also starts the example Wagtail site (port 8001) against the same
    emulator; ``--sandbox-only`` starts just the emulator and its built-in demo page.
    """
    ensure_env(MAIN_ENV, MAIN_EXTRAS)
    python = bin_path(MAIN_ENV, "python")
    if "--sandbox-only" in args:
        rest = [a for a in args if a != "--sandbox-only"]
        run([python, "-m", "cmi_core.cli", "sandbox", *rest])
        return
    wagtail = None
    if "--wagtail" in args:
        args = [a for a in args if a != "--wagtail"]
        sandbox_port = (
            args[args.index("--sandbox-port") + 1] if "--sandbox-port" in args else "8765"
        )
        command = [python, "examples/wagtail_site/run_demo.py", "--external-sandbox"]
        wagtail = subprocess.Popen([*command, "--sandbox-port", sandbox_port], cwd=ROOT)
    try:
        run([python, "examples/oscar_shop/run_demo.py", *args])
    finally:
        if wagtail is not None:
            wagtail.terminate()
            wagtail.wait(timeout=10)


def main() -> None:
    commands = {"test": test, "demo": demo}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        sys.exit(2)
    if sys.version_info < (3, 11):
        sys.exit("dev.py: cmi-payments needs Python 3.11 or newer")
    try:
        commands[sys.argv[1]](sys.argv[2:])
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
