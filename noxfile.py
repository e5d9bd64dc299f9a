"""The test matrix: the suites run against the built wheel, not against the source tree.

    python3 dev.py matrix              # what CI runs: the sessions in nox.options.sessions
    .venv/bin/nox -l                   # every session, with its Python and framework pins
    .venv/bin/nox -s newest            # one of them

Each session builds the sdist and, from the sdist, the wheel (once per nox run; the wheel
must be the pure ``py3-none-any`` one), installs the wheel with its extras into a fresh
environment of its Python, then runs the core, emulator, shared Django layer, Oscar, Saleor
and Wagtail suites on SQLite from a scratch folder that holds only a link to ``tests/``: the
repository's root is never on ``sys.path``, and a ``conftest.py`` there stops the run unless
``cmi_core`` and the adapters are imported from the environment's site-packages.

The browser flows (marker ``browser``) and the PostgreSQL passes are left to ``python3
dev.py test``, which runs them on the development environment: they exercise the browser
and the database, not the packaging. The environments here do not use ``constraints.txt``:
each one pins only its frameworks and takes the newest release of everything else, so the
matrix also notices a new release of a dependency that breaks us.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
DIST = ROOT / ".nox" / "dist"

nox.options.default_venv_backend = "venv"
nox.options.download_python = "never"  # only PyPI is reachable in CI: use what is installed
nox.options.sessions = ["oldest", "newest"]  # what CI runs (python3 dev.py matrix)

#: (folder, Django settings module or None) of each suite, in dev.py's order.
SUITES = [
    ("tests/core tests/sandbox", None),
    ("tests/adapters/django", "tests.adapters.django.settings"),
    ("tests/adapters/oscar", "tests.adapters.oscar.settings"),
    ("tests/adapters/saleor", "tests.adapters.saleor.settings"),
    ("tests/adapters/wagtail", "tests.adapters.wagtail.settings"),
]

#: The pytest settings of pyproject.toml without ``pythonpath = ["."]`` (which would put the
#: source tree first on sys.path and test it instead of the wheel).
PYTEST_INI = """\
[pytest]
addopts = -rfE --strict-markers -p no:cacheprovider
markers =
    browser: drives Debian's Chromium through Playwright
    postgres: needs a PostgreSQL server
"""

#: Loaded before any test: the packages under test come from site-packages, or nothing runs.
INSTALLED_CHECK = '''\
"""Written by noxfile.py: stops the run unless the installed wheel is what is tested."""

import importlib.util
import sys
import sysconfig

SITE = sysconfig.get_paths()["purelib"]
for name in ("cmi_core", "cmi_django", "cmi_oscar", "cmi_saleor", "cmi_wagtail"):
    origin = importlib.util.find_spec(name).origin
    if not origin.startswith(SITE):
        sys.exit(f"noxfile.py: {name} would be imported from {origin}, not from {SITE}")
print(f"noxfile.py: cmi_core and the adapters are imported from {SITE}")
'''


def find_python(version: str) -> str:
    """An interpreter of ``version`` (e.g. "3.13"): on PATH, else under pyenv, else the
    bare version, which nox reports as missing (an error in CI, where ``CI`` is set)."""
    candidates = [shutil.which(f"python{version}") or ""]
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = glob.glob(os.path.join(pyenv_root, "versions", f"{version}.*", "bin", "python3"))
    candidates += sorted(found, key=_version_key, reverse=True)
    candidates += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    for candidate in filter(None, candidates):
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys; print(sys._base_executable, *sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout.split()
        except (OSError, subprocess.SubprocessError):
            continue  # e.g. a pyenv shim of a version that is installed but not enabled
        if len(out) == 3 and f"{out[1]}.{out[2]}" == version:
            return out[0]
    return version


def _version_key(path: str) -> tuple[int, ...]:
    name = Path(path).parents[1].name  # .../versions/3.13.0/bin/python3
    return tuple(int(part) if part.isdigit() else -1 for part in name.split("."))


_built: list[Path] = []


def built_wheel(session: nox.Session) -> Path:
    """Build the sdist, then the wheel from it (once per nox run), and check the wheel."""
    if _built:
        return _built[0]
    shutil.rmtree(DIST, ignore_errors=True)
    session.install("build>=1.2")
    # python -m build makes the wheel from the unpacked sdist: a file missing from the sdist
    # fails here. CMI_BUILD_SPEEDUPS is cleared: this is the wheel a release publishes.
    session.run(
        "python",
        "-m",
        "build",
        "--outdir",
        str(DIST),
        str(ROOT),
        env={"CMI_BUILD_SPEEDUPS": ""},
        silent=True,  # the build's file list is shown only when it fails
    )
    wheels = list(DIST.glob("*.whl"))
    sdists = list(DIST.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        session.error(f"expected one wheel and one sdist in {DIST}, found {wheels + sdists}")
    wheel = wheels[0]
    if not wheel.name.endswith("-py3-none-any.whl"):
        session.error(f"{wheel.name} is not a pure py3-none-any wheel")
    with zipfile.ZipFile(wheel) as archive:
        compiled = [n for n in archive.namelist() if n.endswith((".so", ".pyd", ".c"))]
    if compiled:
        session.error(f"{wheel.name} carries compiled code or C sources: {compiled}")
    size = wheel.stat().st_size
    session.log(f"built {wheel.name} ({size / 1024:.0f} KiB) and {sdists[0].name}")
    _built.append(wheel)
    return wheel


def run_suites(session: nox.Session, pins: list[str]) -> None:
    """Install the wheel with ``pins`` into the session's environment and run every suite."""
    wheel = built_wheel(session)
    session.install(f"cmi-payments[all,test] @ {wheel.as_uri()}", *pins)
    # A reused environment (nox -r) may hold an older build of the same version: replace it.
    session.install("--force-reinstall", "--no-deps", str(wheel))
    session.run("python", "-m", "pip", "check")
    scratch = Path(session.create_tmp()) / "installed"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    (scratch / "tests").symlink_to(ROOT / "tests", target_is_directory=True)
    (scratch / "pytest.ini").write_text(PYTEST_INI)
    (scratch / "conftest.py").write_text(INSTALLED_CHECK)
    session.chdir(scratch)
    env = {"PYTHONPATH": "", "CMI_REQUIRE_SERVICES": "", "CMI_TEST_DATABASE": "sqlite"}
    # From the scratch folder, as the tests will import it: the installed, pure cmi_core.
    session.run(
        "python",
        "-c",
        "import django, oscar, wagtail, cmi_core.hashing as h; "
        "print('Django', django.__version__, '| Oscar', oscar.get_version(), "
        "'| Wagtail', wagtail.__version__, '| accelerator', h.ACCELERATED); "
        "assert not h.ACCELERATED, 'the pure wheel must not carry the accelerator'",
        env=env,
    )
    for folders, settings in SUITES:
        extra = ["--ds", settings] if settings else []
        # -m: the browser flows and PostgreSQL passes run in dev.py's main run (docstring).
        session.run(
            "python", "-m", "pytest", "-q", "-m", "not browser and not postgres", *extra,
            *folders.split(), env=env,
        )  # fmt: skip


@nox.session(python=find_python("3.11"))
def oldest(session: nox.Session) -> None:
    """Python 3.11, Django 5.2 LTS, Wagtail 7.0 LTS, Oscar 4.0: the floor of every range."""
    run_suites(session, ["Django>=5.2,<5.3", "wagtail>=7.0,<7.1", "django-oscar>=4.0,<4.1"])


@nox.session(python=find_python("3.13"))
def newest(session: nox.Session) -> None:
    """Python 3.13, Django 6.1, Wagtail 8, and the newest release of everything else."""
    run_suites(session, ["Django>=6.1,<6.2", "wagtail>=8.0,<9"])


@nox.session(python=find_python("3.12"))
def middle(session: nox.Session) -> None:
    """Python 3.12, Django 6.0, Wagtail 7.x (not run in CI, for time: nox -s middle)."""
    run_suites(session, ["Django>=6.0,<6.1", "wagtail>=7.1,<8"])
