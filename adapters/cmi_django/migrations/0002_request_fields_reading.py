# ruff: noqa: RUF012  - Django reads these class lists
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("cmi_django", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="payment",
            name="request_fields",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="callbacklog",
            name="reading",
            field=models.CharField(blank=True, max_length=16),
        ),
    ]
