#!/usr/bin/env python3
"""Django's command line for the Wagtail demo site (``python manage.py runserver``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wagtail_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
