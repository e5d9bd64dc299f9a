"""The optional C accelerator of the ver3 plaintext; everything else is in pyproject.toml.

``optional=True``: without a C compiler the install goes on and ``cmi_core.hashing`` uses
its pure-Python definition (same output, slower; ``cmi_core.hashing.ACCELERATED`` says which).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("cmi_core._speedups", ["cmi_core/_speedups.c"], optional=True)])
