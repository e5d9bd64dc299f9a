#!/usr/bin/env python3
"""Set up and run cmi-payments from a fresh clone, with nothing but Python 3.11+.

    python3 dev.py demo    # the demo: an Oscar shop paying through the local CMI emulator
                           # (--wagtail: the example Wagtail site beside it, on port 8001)
    python3 dev.py test    # the whole test suite (lint, types, tests), as CI runs it

The first run creates ``.venv/`` and installs the project into it, with the versions
pinned in ``constraints.txt`` and the C accelerator built; later runs reuse it until
``pyproject.toml``, ``setup.py``, ``constraints.txt`` or the accelerator's source changes.
``test --require-services`` (what ``.ci/run`` uses) turns a missing Chromium or PostgreSQL
into a failure instead of a skip. Also (docs/development.md):

    python3 dev.py matrix        # the suites against the built wheel, per noxfile.py
    python3 dev.py docs          # preview the documentation site (--build: build it, strict)
    python3 dev.py constraints   # re-pin constraints.txt from .venv/
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


CONSTRAINTS = ROOT / "constraints.txt"
#: What an install depends on: a change to any of them re-installs (the C accelerator is
#: built at install time, so its source is one).
INSTALL_INPUTS = ["pyproject.toml", "setup.py", "constraints.txt", "cmi_core/_speedups.c"]


def ensure_env(env: Path, extras: str) -> None:
    """Create the virtual environment and install the project, unless already current.

    The versions are those of ``constraints.txt`` (a reproducible environment), and
    ``CMI_BUILD_SPEEDUPS=require`` builds the C accelerator (setup.py), so the hash tests
    run both its code paths; the published wheel is the pure one (noxfile.py tests it).
    """
    stamp = env / ".cmi-installed"
    sources = b"".join((ROOT / name).read_bytes() for name in INSTALL_INPUTS)
    digest = hashlib.sha256(sources + extras.encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    if not env.exists():
        print(f"dev.py: creating {env.name}/", flush=True)
        venv.EnvBuilder(with_pip=True).create(env)
    python = bin_path(env, "python")
    run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"])
    print(f"dev.py: installing cmi-payments[{extras}] into {env.name}/", flush=True)
    install_env = {**os.environ, "CMI_BUILD_SPEEDUPS": "require"}
    run(
        [python, "-m", "pip", "install", "-q", "-c", str(CONSTRAINTS), "-e", f".[{extras}]"],
        install_env,
    )
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
                # Again with server-side binding and prepared statements, the
                # configuration docs/django-layer.md describes (tests/adapters/dbsettings.py).
                print(f"dev.py: {name} (PostgreSQL, prepared statements)", flush=True)
                prepared_env = {**pg_env, "CMI_TEST_POSTGRES_PREPARED": "1"}
                run(
                    [python, "-m", "pytest", "-q", "-m", "not browser", *extra, *paths],
                    prepared_env,
                )
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


def matrix(args: list[str]) -> None:
    """noxfile.py's sessions: build the sdist and the pure wheel, run the suites against it.

    ``--require-services`` (CI) makes a missing Python of the matrix an error, not a skip;
    other arguments go to nox (``-s newest``, ``-l``).
    """
    ensure_env(MAIN_ENV, MAIN_EXTRAS)
    nox_args = [a for a in args if a != "--require-services"]
    if "--require-services" in args:
        nox_args.append("--error-on-missing-interpreters")
    # A fresh environment each run: the matrix is about what a user's pip resolves today.
    run([bin_path(MAIN_ENV, "nox"), "--no-reuse-existing-virtualenvs", *nox_args])


def docs(args: list[str]) -> None:
    """Preview the documentation site (mkdocs serve), or ``--build`` it into site/, strict:
    a broken link, a missing page or an unresolved API reference is an error."""
    ensure_env(MAIN_ENV, MAIN_EXTRAS)
    mkdocs = bin_path(MAIN_ENV, "mkdocs")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's banner about its future
    if "--build" in args:
        site = str(ROOT / "site")
        run([mkdocs, "build", "--strict", "--clean", "--site-dir", site], env)
        print(f"dev.py: documentation built in {site}", flush=True)
        return
    run([mkdocs, "serve", *args], env)


def constraints(args: list[str]) -> None:
    """Re-pin constraints.txt from .venv/ (after changing a range in pyproject.toml)."""
    ensure_env(MAIN_ENV, MAIN_EXTRAS)
    frozen = subprocess.run(
        [bin_path(MAIN_ENV, "python"), "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    pins = sorted(
        (line for line in frozen if not line.lower().startswith("cmi-payments")), key=str.lower
    )
    header = (
        "# The versions dev.py installs into .venv/ and .venv-core/ (pip install -c), so that\n"
        "# every developer and CI test the same set. Refresh: python3 dev.py constraints\n"
        "# (the test matrix in noxfile.py does not use it: it also tries the newest releases).\n"
    )
    CONSTRAINTS.write_text(header + "\n".join(pins) + "\n")
    print(f"dev.py: {len(pins)} versions pinned in {CONSTRAINTS.name}", flush=True)


def main() -> None:
    commands = {"test": test, "demo": demo, "matrix": matrix, "docs": docs}
    commands["constraints"] = constraints
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
