"""``cmi sandbox``: a local emulator of CMI's hosted payment page, callbacks and XML API.

Importable for tests::

    with Sandbox(port=0) as sandbox:
        config = CMIConfig(client_id=DEFAULT_MERCHANT.client_id,
                           store_key=DEFAULT_MERCHANT.store_key, base_url=sandbox.base_url)

See docs/sandbox.md for the test cards, fault switches and how it differs from CMI.
Standard library only (plus the core's ``defusedxml``).
"""

from __future__ import annotations

from cmi_core.sandbox.cards import CHALLENGE_CODE, TEST_CARDS, TestCard
from cmi_core.sandbox.cli import build_cli_parser, main, run
from cmi_core.sandbox.clock import ManualClock, SystemClock
from cmi_core.sandbox.faults import FAULT_NAMES, Fault
from cmi_core.sandbox.merchants import DEFAULT_MERCHANT, Merchant
from cmi_core.sandbox.server import Sandbox

__all__ = [
    "CHALLENGE_CODE",
    "DEFAULT_MERCHANT",
    "FAULT_NAMES",
    "TEST_CARDS",
    "Fault",
    "ManualClock",
    "Merchant",
    "Sandbox",
    "SystemClock",
    "TestCard",
    "build_cli_parser",
    "main",
    "run",
]
