#!/usr/bin/env python
"""Django's command line for the standalone CMI Saleor app (see README.md)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def main() -> None:
    # Run from a checkout without installing: the project, the core and the adapters.
    for path in (HERE, ROOT, ROOT / "adapters"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saleor_app.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
