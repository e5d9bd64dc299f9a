# ruff: noqa: RUF012  - Django reads these class lists
"""Operation.state (pending, succeeded, failed, unknown); the key constraint covers pending rows.

Rows written before this migration were recorded after CMI answered: ``succeeded`` ones
become ``succeeded``, the others ``failed``.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models


def _states_from_succeeded(apps: Any, schema_editor: Any) -> None:
    operation = apps.get_model("cmi_django", "Operation")
    operation.objects.filter(succeeded=True).update(state="succeeded")


class Migration(migrations.Migration):
    dependencies = [("cmi_django", "0002_request_fields_reading")]

    operations = [
        migrations.RemoveConstraint(model_name="operation", name="cmi_django_operation_key_once"),
        migrations.AddField(
            model_name="operation",
            name="state",
            field=models.CharField(
                choices=[
                    ("pending", "pending"),
                    ("succeeded", "succeeded"),
                    ("failed", "failed"),
                    ("unknown", "unknown"),
                ],
                db_index=True,
                default="failed",
                max_length=9,
            ),
        ),
        migrations.RunPython(_states_from_succeeded, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="operation",
            name="state",
            field=models.CharField(
                choices=[
                    ("pending", "pending"),
                    ("succeeded", "succeeded"),
                    ("failed", "failed"),
                    ("unknown", "unknown"),
                ],
                db_index=True,
                default="pending",
                max_length=9,
            ),
        ),
        migrations.AddConstraint(
            model_name="operation",
            constraint=models.UniqueConstraint(
                condition=models.Q(
                    ("key__isnull", False), ("state__in", ["pending", "unknown", "succeeded"])
                ),
                fields=("payment", "kind", "key"),
                name="cmi_django_operation_key_once",
            ),
        ),
    ]
