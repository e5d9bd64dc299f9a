"""The test database of every Django-based adapter suite: SQLite, or PostgreSQL on demand.

``CMI_TEST_DATABASE=postgres`` with ``CMI_TEST_POSTGRES_DSN=postgresql://user[:pw]@host:port/db``
(what ``python3 dev.py test`` sets when it starts its throw-away server) selects
PostgreSQL; anything else, SQLite (in memory during tests). With PostgreSQL,
``CMI_TEST_POSTGRES_PREPARED=1`` also turns on Django's ``server_side_binding`` and
psycopg's prepared statements (``prepare_threshold`` 5: a statement run five times on a
connection is prepared; psycopg's own default, which Django turns off): the
configuration docs/django-layer.md describes for shops with no pooler in the way.
``dev.py test`` runs the Django layer's and Saleor's suites that way too.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit


def using_postgres() -> bool:
    return os.environ.get("CMI_TEST_DATABASE", "").lower() in ("postgres", "postgresql")


def prepared_statements() -> bool:
    """PostgreSQL with server-side binding and prepared statements (module docstring)."""
    return using_postgres() and os.environ.get("CMI_TEST_POSTGRES_PREPARED") == "1"


def sqlite_database(name: str) -> dict[str, Any]:
    """SQLite as the examples configure it: writers serialised, waiting up to 20 s.

    ``IMMEDIATE`` takes the write lock when a transaction begins, so concurrent writers
    wait for their turn instead of failing with "database is locked".
    """
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": name,
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }


def database_settings() -> dict[str, dict[str, Any]]:
    """A ``DATABASES`` setting chosen from the environment (see the module docstring)."""
    if not using_postgres():
        return {"default": sqlite_database(":memory:")}
    dsn = os.environ.get("CMI_TEST_POSTGRES_DSN", "")
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgres", "postgresql") or not parts.hostname:
        raise RuntimeError(
            "CMI_TEST_DATABASE=postgres needs CMI_TEST_POSTGRES_DSN, "
            "e.g. postgresql://postgres@127.0.0.1:5432/postgres"
        )
    return {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")) or "postgres",
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname,
            "PORT": str(parts.port or 5432),
            "OPTIONS": (
                {"server_side_binding": True, "prepare_threshold": 5}
                if prepared_statements()
                else {}
            ),
        }
    }
