"""What a release ships: a pure wheel by default, the accelerator only on request, and
dependency ranges that admit the versions the test matrix runs (docs/installation.md).

The builds run on a copy of the project's packaging files, so they leave nothing behind
in the source tree (no build/ folder whose leftovers could slip into a later wheel).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PACKAGING_FILES = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE"]
PACKAGES = ["cmi_core", "adapters"]

pytestmark = pytest.mark.skipif(
    not (ROOT / "setup.py").exists(), reason="needs the project's source tree, not a wheel"
)


def build_wheel(tmp_path: Path, speedups: str) -> Path:
    """``pip wheel`` the project (a copy of it) with ``CMI_BUILD_SPEEDUPS=speedups``."""
    source = tmp_path / "src"
    source.mkdir()
    for name in PACKAGING_FILES:
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", "*.egg-info")
    for name in PACKAGES:
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    out = tmp_path / "wheels"
    env = {**os.environ, "CMI_BUILD_SPEEDUPS": speedups}
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out)]
    subprocess.run([*command, str(source)], env=env, check=True, timeout=600)
    (wheel,) = out.glob("*.whl")
    return wheel


def compiled_members(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return [n for n in archive.namelist() if n.endswith((".so", ".pyd", ".c"))]


def test_the_default_build_is_one_pure_wheel_without_c(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "")
    assert wheel.name.endswith("-py3-none-any.whl")
    assert compiled_members(wheel) == []
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    # The pure definition and the typing stub of the optional module are there.
    assert "cmi_core/hashing.py" in names
    assert "cmi_core/py.typed" in names


def test_cmi_build_speedups_require_builds_a_platform_wheel_with_the_accelerator(
    tmp_path: Path,
) -> None:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler on this machine")
    wheel = build_wheel(tmp_path, "require")
    assert not wheel.name.endswith("-none-any.whl")
    compiled = compiled_members(wheel)
    assert len(compiled) == 1
    assert compiled[0].startswith("cmi_core/_speedups.")


def test_an_unknown_cmi_build_speedups_value_stops_the_build(tmp_path: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError):
        build_wheel(tmp_path, "yes")


def extra_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = {}
    for requirements in project["optional-dependencies"].values():
        for line in requirements:
            requirement = Requirement(line)
            found[requirement.name.lower()] = requirement
    return found


@pytest.mark.parametrize(
    ("name", "admitted", "refused"),
    [
        # Django 5.2 LTS to 6.1: what a Wagtail 8 project made by `wagtail start` pins.
        ("django", ["5.2", "5.2.19", "6.0.10", "6.1", "6.1.3"], ["5.1.15", "6.2"]),
        ("wagtail", ["7.0", "7.0.10", "7.4.4", "8.0.1", "8.9"], ["6.4.2", "9.0"]),
        ("django-oscar", ["4.0", "4.1", "4.2.1"], ["3.2.6", "5.0"]),
    ],
)
def test_the_framework_ranges_admit_the_supported_releases(
    name: str, admitted: list[str], refused: list[str]
) -> None:
    specifier = extra_requirements()[name].specifier
    assert [v for v in admitted if not specifier.contains(v)] == []
    assert [v for v in refused if specifier.contains(v)] == []


def test_python_3_11_to_3_13_may_install_it() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requires = Requirement(f"x{project['requires-python']}").specifier
    assert all(requires.contains(v) for v in ("3.11.0", "3.12.1", "3.13.0"))
    assert not requires.contains("3.10.13")
