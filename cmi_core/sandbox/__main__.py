"""``python -m cmi_core.sandbox``: the same as ``cmi sandbox``."""

from __future__ import annotations

import sys

from cmi_core.sandbox.cli import main

sys.exit(main())
