# ruff: noqa: RUF012  - Django reads these class lists
"""Indexes for the callbacks' and the operations' staff lists (the Django admin).

(created_at, id) serves each list newest first, one index range a page (the operations
list sorted its whole table before: created_at had no index); it replaces the callbacks'
single-column created_at index, a prefix of it. (outcome, created_at, id) serves the
callbacks' outcome filter: its choices walk the index value to value
(:func:`cmi_django.listing.distinct_values`, no ``DISTINCT`` over every callback) and a
filtered page is one range of it. (kind, created_at, id) does the same for the operations'
kind filter (a refund is a few percent of the operations: counting them up to the limit
read up to the limit divided by that share without it). The callbacks' path writes one
index more than before (the outcome's); the operations are written rarely.
"""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("cmi_django", "0004_staff_list_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="callbacklog",
            name="created_at",
            field=models.DateTimeField(auto_now_add=True),
        ),
        migrations.AddIndex(
            model_name="callbacklog",
            index=models.Index(fields=["created_at", "id"], name="cmi_callback_created"),
        ),
        migrations.AddIndex(
            model_name="callbacklog",
            index=models.Index(fields=["outcome", "created_at", "id"], name="cmi_callback_outcome"),
        ),
        migrations.AddIndex(
            model_name="operation",
            index=models.Index(fields=["created_at", "id"], name="cmi_operation_created"),
        ),
        migrations.AddIndex(
            model_name="operation",
            index=models.Index(fields=["kind", "created_at", "id"], name="cmi_operation_kind"),
        ),
    ]
