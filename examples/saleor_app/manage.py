#!/usr/bin/env python
"""Django's command line for the standalone CMI Saleor app (see README.md).

Run it with the Python of an environment where cmi-payments is installed
(``pip install "cmi-payments[saleor]"``, or ``pip install -e ".[saleor]"`` in a checkout):
that installed copy is the one used. Only when cmi-payments is not installed at all does
it fall back to this checkout's packages, added at the end of ``sys.path`` so that they can
never shadow an installed wheel.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def main() -> None:
    if str(HERE) not in sys.path:  # the project package, saleor_app
        sys.path.insert(0, str(HERE))
    if importlib.util.find_spec("cmi_saleor") is None:  # not installed: use the checkout
        sys.path += [str(ROOT), str(ROOT / "adapters")]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saleor_app.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
