"""One version: written in pyproject.toml, read from the installed metadata everywhere."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import cmi_core
from cmi_core import _version
from cmi_core.cli import main

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
WRITTEN = PYPROJECT["project"]["version"]


def fake_distribution(folder: Path, version: str) -> Path:
    """A ``cmi-payments`` distribution's metadata, alone in ``folder`` (no code)."""
    info = folder / f"cmi_payments-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: cmi-payments\nVersion: {version}\n", encoding="utf-8"
    )
    return folder


def run_python(code: str, folder: Path) -> str:
    """``code``'s standard output in a fresh interpreter run in ``folder``, first on sys.path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, (folder, ROOT)))}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=folder,  # not the checkout: an editable install leaves its metadata there
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_the_package_reports_the_version_pyproject_writes() -> None:
    assert cmi_core.__version__ == importlib.metadata.version("cmi-payments") == WRITTEN


def test_the_version_comes_from_the_installed_metadata(tmp_path: Path) -> None:
    # Whatever the metadata says is what every reader shows: nothing else is written.
    fake = fake_distribution(tmp_path, "7.7.7")
    code = "import cmi_core, cmi_core.cli as c; print(cmi_core.__version__); c.main(['--version'])"
    assert run_python(code, fake).splitlines() == ["7.7.7", "cmi-payments 7.7.7"]


def test_a_source_tree_without_install_reads_its_pyproject(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    # The source tree's pyproject beside the package (the package may be the installed
    # wheel, when the test matrix runs these tests: point it at this checkout's).
    monkeypatch.setattr(_version, "_PYPROJECT", ROOT / "pyproject.toml")
    assert _version.version.__wrapped__() == WRITTEN


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[project]\nname = "cmi-payments"\nversion = "1.2.3"\n', "1.2.3"),
        ('[project]\nname = "someone-else"\nversion = "1.2.3"\n', _version.UNKNOWN),
        ('[project]\nname = "cmi-payments"\ndynamic = ["version"]\n', _version.UNKNOWN),
        ("not [ toml", _version.UNKNOWN),
    ],
)
def test_source_version(tmp_path: Path, text: str, expected: str) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(text, encoding="utf-8")
    assert _version.source_version(pyproject) == expected
    assert _version.source_version(tmp_path / "missing.toml") == _version.UNKNOWN


def test_cmi_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"cmi-payments {WRITTEN}\n"


def test_no_python_file_writes_a_version() -> None:
    assignment = re.compile(r"^\s*(__version__|VERSION)\s*(:\s*\w+\s*)?=\s*[\"']", re.MULTILINE)
    written = [
        path.relative_to(ROOT).as_posix()
        for folder in ("cmi_core", "adapters", "examples")
        for path in (ROOT / folder).rglob("*.py")
        if assignment.search(path.read_text(encoding="utf-8"))
    ]
    assert written == []
