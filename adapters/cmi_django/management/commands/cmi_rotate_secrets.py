"""``manage.py cmi_rotate_secrets``: re-encrypt every stored secret under the current key.

After a key rotation (:mod:`cmi_django.crypto`: the new key in ``CMI_ENCRYPTION_KEY`` or
``SECRET_KEY``, the previous one in ``CMI_ENCRYPTION_KEY_FALLBACKS`` or
``SECRET_KEY_FALLBACKS``), this finds every :class:`~cmi_django.crypto.EncryptedTextField`
of every installed model (Saleor's app tokens and channel credentials, Wagtail's site
settings, a project's own), and rewrites each value that is not yet under the current
key. Then the previous key can leave the fallbacks.

- ``--dry-run``: count what would be re-encrypted, write nothing.
- A value no configured key decrypts is reported (model, field, primary key: never the
  data) and left as it is; the command then fails with the setting to fix.
- A row changed by someone else between the read and the write is left alone (the
  write is conditional on the ciphertext read), and counted.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models
from django.db.models.functions import Cast

from cmi_django.crypto import DecryptionError, EncryptedTextField, decrypt, is_current, key_setting

RAW = "_cmi_ciphertext"


def encrypted_fields() -> list[tuple[type[models.Model], str]]:
    """Every concrete ``EncryptedTextField`` of every installed model: (model, field name)."""
    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                found.append((model, field.name))
    return found


class Command(BaseCommand):
    help = "Re-encrypt every stored CMI secret under the current encryption key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count, write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = options["dry_run"]
        setting = key_setting()
        self.stdout.write(f"current key: {setting}" + (" (dry run: nothing is written)" * dry_run))
        totals = {"rotated": 0, "current": 0, "failed": 0, "changed": 0}
        for model, name in encrypted_fields():
            counts = self._rotate(model, name, dry_run=dry_run)
            label = f"{model._meta.label}.{name}"
            self.stdout.write(
                f"{label}: {counts['rows']} value(s), {counts['rotated']} "
                f"{'to re-encrypt' if dry_run else 're-encrypted'}, {counts['current']} "
                f"already current, {counts['failed']} undecryptable"
                + (f", {counts['changed']} changed meanwhile" if counts["changed"] else "")
            )
            for key in totals:
                totals[key] += counts[key]
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        self.stdout.write(
            f"{verb} {totals['rotated']} value(s); {totals['current']} already current"
        )
        if totals["failed"]:
            fallbacks = (
                "SECRET_KEY_FALLBACKS"
                if setting == "SECRET_KEY"
                else "CMI_ENCRYPTION_KEY_FALLBACKS"
            )
            raise CommandError(
                f"{totals['failed']} value(s) cannot be decrypted with any configured key: "
                f"add the key they were saved with to {fallbacks} and run this again"
            )

    def _rotate(self, model: type[models.Model], name: str, *, dry_run: bool) -> dict[str, int]:
        counts = {"rows": 0, "rotated": 0, "current": 0, "failed": 0, "changed": 0}
        # The ciphertext as stored: cast to a plain text field, so it is not decrypted.
        raw = model._default_manager.annotate(**{RAW: Cast(name, models.TextField())})
        rows = raw.exclude(**{f"{RAW}__isnull": True}).exclude(**{RAW: ""})
        for pk, token in rows.values_list("pk", RAW).iterator(chunk_size=500):
            counts["rows"] += 1
            if is_current(token):
                counts["current"] += 1
                continue
            try:
                text = decrypt(token)
            except DecryptionError:
                counts["failed"] += 1
                self.stderr.write(f"{model._meta.label}.{name} pk={pk}: no key decrypts it")
                continue
            if dry_run:
                counts["rotated"] += 1
                continue
            # The field encrypts ``text`` under the current key; only if the row still
            # holds what was read (a value saved meanwhile is already current).
            written = raw.filter(pk=pk, **{RAW: token}).update(**{name: text})
            counts["rotated" if written else "changed"] += 1
        return counts
