#!/usr/bin/env python
"""One command: apply migrations, then serve the app (``python examples/saleor_app/run.py``).

``--host`` / ``--port`` (default 127.0.0.1:8000). Settings come from the environment;
see README.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

MANAGE = Path(__file__).resolve().parent / "manage.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8000")
    args = parser.parse_args()
    subprocess.run([sys.executable, str(MANAGE), "migrate", "--noinput"], check=True)  # noqa: S603
    subprocess.run(  # noqa: S603
        [sys.executable, str(MANAGE), "runserver", f"{args.host}:{args.port}"], check=False
    )


if __name__ == "__main__":
    main()
