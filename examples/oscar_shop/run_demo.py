#!/usr/bin/env python3
"""Run the Oscar demo shop and the CMI emulator together, on loopback.

    python examples/oscar_shop/run_demo.py [--port 8000] [--sandbox-port 8765]

Migrates the SQLite database under ``examples/oscar_shop/var/`` (the first run takes a
minute: Oscar has many migrations), adds what is missing of the sample catalogue, starts
``cmi sandbox`` in a thread and the shop in a threaded WSGI server, and prints the URLs,
the test cards and the dashboard login. Ctrl-C stops both.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent

__all__ = ["main"]


def _cards() -> str:
    from cmi_core.sandbox import CHALLENGE_CODE

    rows = [
        ("4111 1111 1111 1111", "approved"),
        ("4000 0000 0000 3220", f"3-D Secure challenge (code {CHALLENGE_CODE})"),
        ("4000 0000 0000 0051", "declined by the issuer"),
        ("4000 0000 0000 0101", "3-D Secure authentication fails"),
    ]
    lines = [f"    {pan}   {what}" for pan, what in rows]
    return "\n".join(
        [*lines, "    any future expiry date, any 3-digit CVV (more: docs/sandbox.md)"]
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Migrate, load the catalogue if empty, start the emulator and the shop; block."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--sandbox-port", type=int, default=8765)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oscar_shop.settings")
    sandbox_url = f"http://{args.host}:{args.sandbox_port}"
    os.environ["CMI_SANDBOX_URL"] = sandbox_url

    import django
    from django.conf import settings

    django.setup()
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.management import call_command
    from django.core.servers.basehttp import run
    from django.core.wsgi import get_wsgi_application

    from cmi_core.sandbox import DEFAULT_MERCHANT, Sandbox

    var = Path(settings.VAR_DIR)
    var.mkdir(parents=True, exist_ok=True)
    print(  # noqa: T201 - a launcher prints its progress
        "oscar_shop: migrating the database (the first time takes a minute)...", flush=True
    )
    call_command("migrate", interactive=False, verbosity=0)
    call_command("load_demo_catalogue")  # idempotent: adds only what is missing
    call_command("update_index", verbosity=0)  # the catalogue pages are search results

    sandbox = Sandbox(host=args.host, port=args.sandbox_port, data_dir=var / "sandbox")
    sandbox.start()
    shop = f"http://{args.host}:{args.port}"
    print(  # noqa: T201 - a launcher prints its URLs
        f"""
Oscar demo shop        {shop}/
  dashboard            {shop}/dashboard/   (login demo@example.com / demo)
  CMI payments         {shop}/dashboard/cmi/
CMI emulator           {sandbox_url}/   (Merchant Center: {sandbox_url}/merchant/)
  merchant             {DEFAULT_MERCHANT.client_id}, capture mode {
            settings.CMI_PAYMENTS["default"]["CAPTURE_MODE"]
        }
Test cards:
{_cards()}

Ctrl-C stops the shop and the emulator.""",
        flush=True,
    )
    try:
        run(args.host, args.port, StaticFilesHandler(get_wsgi_application()), threading=True)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
