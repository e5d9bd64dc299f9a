#!/usr/bin/env python3
"""Run the Wagtail demo site, with the CMI emulator or beside one already running.

    python examples/wagtail_site/run_demo.py [--port 8001] [--sandbox-port 8765]
                                             [--external-sandbox]

Migrates the SQLite database under ``examples/wagtail_site/var/``, runs ``setup_demo``
(pages, CMI settings pointing at the emulator, ``admin``/``admin``), starts ``cmi sandbox``
in a thread unless ``--external-sandbox`` says one already listens on ``--sandbox-port``
(e.g. the Oscar demo's), then serves the site in a threaded WSGI server. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Migrate, set up the demo, start the emulator (unless external) and the site; block."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--sandbox-port", type=int, default=8765)
    parser.add_argument(
        "--external-sandbox",
        action="store_true",
        help="do not start the emulator: one already listens on --sandbox-port",
    )
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wagtail_site.settings")
    os.environ["CMI_SANDBOX_URL"] = f"http://{args.host}:{args.sandbox_port}"

    import django
    from django.conf import settings

    django.setup()
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.management import call_command
    from django.core.servers.basehttp import run
    from django.core.wsgi import get_wsgi_application

    Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)
    call_command("migrate", interactive=False, verbosity=0)
    call_command("setup_demo")

    sandbox = None
    if not args.external_sandbox:
        from cmi_core.sandbox import Sandbox

        sandbox = Sandbox(
            host=args.host, port=args.sandbox_port, data_dir=str(Path(settings.VAR_DIR) / "sandbox")
        )
        sandbox.start()
    site = f"http://{args.host}:{args.port}"
    print(  # noqa: T201 - the demo tells the user where to go
        f"""
Wagtail demo site   {site}/
  membership page   {site}/adhesion/
  donation page     {site}/don/
  Wagtail admin     {site}/admin/   (admin / admin; Payments, Settings > CMI payments;
                    editor / editor: an editor, not a superuser)
CMI emulator        {settings.CMI_SANDBOX_URL}/merchant/{"  (external)" if sandbox is None else ""}
Test cards: 4111 1111 1111 1111 approves, 4000 0000 0000 0051 is declined
            (any future expiry date, any CVV; more in docs/sandbox.md)
Ctrl-C stops the site{"" if sandbox is None else " and the emulator"}.""",
        flush=True,
    )
    try:
        run(args.host, args.port, StaticFilesHandler(get_wsgi_application()), threading=True)
    except KeyboardInterrupt:
        pass
    finally:
        if sandbox is not None:
            sandbox.stop()


if __name__ == "__main__":
    main()
