"""The optional C accelerator of the ver3 plaintext; everything else is in pyproject.toml.

By default nothing is compiled: ``python -m build`` and ``pip install`` from the sdist give
the pure ``py3-none-any`` wheel, which installs on every platform and computes the hash in
pure Python (the accelerator saves a few microseconds of a callback that takes tens of
milliseconds; docs/installation.md has the figures).

``CMI_BUILD_SPEEDUPS=1`` builds ``cmi_core._speedups`` too (a platform wheel), skipping it
with a warning when no C compiler is found; ``CMI_BUILD_SPEEDUPS=require`` makes a failed
build an error (``dev.py`` uses it, so the test environments always have both code paths).
``cmi_core.hashing.ACCELERATED`` tells at run time which one is in use.
"""

from __future__ import annotations

import os

from setuptools import Extension, setup

_choice = os.environ.get("CMI_BUILD_SPEEDUPS", "").strip().lower()
if _choice not in ("", "0", "1", "require"):
    raise SystemExit(f"CMI_BUILD_SPEEDUPS must be 0, 1 or require, not {_choice!r}")

ext_modules = []
if _choice in ("1", "require"):
    ext_modules.append(
        Extension("cmi_core._speedups", ["cmi_core/_speedups.c"], optional=_choice == "1")
    )

setup(ext_modules=ext_modules)
