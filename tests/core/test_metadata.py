"""What PyPI shows: pyproject's metadata, the README as the project's description, py.typed."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
README = (ROOT / PROJECT["readme"]).read_text(encoding="utf-8")
#: The one repository address the metadata and the README link to.
REPOSITORY = "https://github.com/cmi-payments/cmi-payments"

PACKAGES = [
    "cmi_core",
    "adapters/cmi_django",
    "adapters/cmi_oscar",
    "adapters/cmi_saleor",
    "adapters/cmi_wagtail",
]


def bounds(name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``((5, 2), (6, 2))`` from the optional dependency ``Django>=5.2,<6.2``."""
    for requirements in PROJECT["optional-dependencies"].values():
        for requirement in requirements:
            found = re.match(rf"{name}>=([\d.]+),\s*<([\d.]+)", requirement)
            if found:
                low, high = (tuple(map(int, v.split("."))) for v in found.groups())
                return low, high
    raise AssertionError(f"no {name}>=...,<... requirement")


def test_project_urls_point_at_the_repository() -> None:
    urls = PROJECT["urls"]
    assert {"Homepage", "Documentation", "Source", "Issues", "Changelog"} <= set(urls)
    for url in urls.values():
        assert url.startswith(REPOSITORY), url


def test_classifiers_say_what_runs_it() -> None:
    classifiers = set(PROJECT["classifiers"])
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    minimum = re.fullmatch(r">=3\.(\d+)", PROJECT["requires-python"])
    assert minimum is not None
    assert f"Programming Language :: Python :: 3.{minimum.group(1)}" in classifiers
    # Both ends of each framework range the extras admit are announced.
    low, high = bounds("Django")
    assert f"Framework :: Django :: {low[0]}.{low[1]}" in classifiers
    if len(high) > 1 and high[1] > 0:  # <6.2: 6.1 is the newest admitted
        assert f"Framework :: Django :: {high[0]}.{high[1] - 1}" in classifiers
    low, high = bounds("wagtail")
    assert f"Framework :: Wagtail :: {low[0]}" in classifiers
    newest = high[0] - 1 if high[1:] in ((), (0,)) else high[0]  # <9: 8; <8.1: 8
    assert f"Framework :: Wagtail :: {newest}" in classifiers
    assert "Typing :: Typed" in classifiers


def test_no_licence_classifier_beside_the_licence_expression() -> None:
    # PEP 639: an SPDX `license` replaces the classifier; setuptools refuses both.
    assert PROJECT["license"] == "MIT"
    assert not [c for c in PROJECT["classifiers"] if c.startswith("License ::")]


def test_readme_links_are_absolute() -> None:
    # PyPI shows the README away from the repository: a relative link leads nowhere.
    targets = re.findall(r"\]\(([^)]*)\)", README) + re.findall(r"<(https?://[^>]*)>", README)
    assert targets
    relative = [t for t in targets if not t.startswith(("https://", "http://", "#"))]
    assert relative == []
    assert all(t.startswith(REPOSITORY) for t in targets if "github.com" in t)


def test_readme_opens_with_what_it_is_and_keeps_the_two_commands() -> None:
    intro = README.split("\n## ", 1)[0]
    assert "CMI" in intro
    assert "dev.py" not in intro
    assert README.index("## Install") < README.index("python3 dev.py demo")
    commands = re.findall(r"^python3 dev\.py \w+", README, flags=re.MULTILINE)
    assert commands == ["python3 dev.py demo", "python3 dev.py test"]
    for platform in ("Django Oscar", "Saleor", "Wagtail"):
        assert f"## Start with {platform}" in README


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_is_marked_typed_and_ships_the_marker(package: str) -> None:
    # PEP 561: type checkers read an installed package's hints only when it has py.typed.
    assert (ROOT / package / "py.typed").is_file()
    package_data = PYPROJECT["tool"]["setuptools"]["package-data"]
    name = package.rpartition("/")[2]
    assert "py.typed" in package_data.get(name, []) + package_data.get("*", [])
