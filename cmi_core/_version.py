"""The one version of cmi-payments, read from the installed distribution's metadata.

``pyproject.toml`` is the only place the version is written. Everything that shows it
(``cmi_core.__version__``, ``cmi --version``, the Saleor app's manifest) asks
:func:`version`, which reads the metadata pip installed. A source tree imported without
being installed (``PYTHONPATH=.``) reads the ``pyproject.toml`` beside the package instead.
"""

from __future__ import annotations

import functools
import importlib.metadata
import tomllib
from pathlib import Path

__all__ = ["DISTRIBUTION", "UNKNOWN", "source_version", "version"]

DISTRIBUTION = "cmi-payments"
#: What a copy that is neither installed nor beside its ``pyproject.toml`` reports (PEP 440).
UNKNOWN = "0+unknown"
_PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


@functools.cache
def version() -> str:
    """The installed cmi-payments' version, e.g. ``"0.1.0"``."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return source_version(_PYPROJECT)


def source_version(pyproject: Path) -> str:
    """The version written in ``pyproject``, or :data:`UNKNOWN` if it is not ours."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return UNKNOWN
    project = data.get("project")
    if not isinstance(project, dict) or project.get("name") != DISTRIBUTION:
        return UNKNOWN
    written = project.get("version")
    return written if isinstance(written, str) and written else UNKNOWN
