# ruff: noqa: RUF012  - Django reads these class lists
"""Indexes for the staff payment lists: each page is one index range at any table size.

(platform, created_at, id) serves the Oscar and Wagtail lists newest first;
(platform, reference, created_at, id) a reference filter (Wagtail's page, Oscar's order
number) and its distinct values; (created_at, id) the Django admin's list of every
platform; config_key its distinct values. The single-column platform and reference
indexes are prefixes of these, so they go.
"""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("cmi_django", "0003_operation_state"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="payment",
            options={"ordering": ("-created_at", "-id")},
        ),
        migrations.AlterField(
            model_name="payment",
            name="config_key",
            field=models.CharField(db_index=True, default="default", max_length=100),
        ),
        migrations.AlterField(
            model_name="payment",
            name="platform",
            field=models.CharField(max_length=32),
        ),
        migrations.AlterField(
            model_name="payment",
            name="reference",
            field=models.CharField(blank=True, max_length=128),
        ),
        migrations.AddIndex(
            model_name="payment",
            index=models.Index(
                fields=["platform", "created_at", "id"], name="cmi_payment_platform_new"
            ),
        ),
        migrations.AddIndex(
            model_name="payment",
            index=models.Index(
                fields=["platform", "reference", "created_at", "id"], name="cmi_payment_reference"
            ),
        ),
        migrations.AddIndex(
            model_name="payment",
            index=models.Index(fields=["created_at", "id"], name="cmi_payment_created"),
        ),
    ]
