"""Load the shipped drug catalogue (rempart/care/catalogue.json); re-run safely on upgrade."""

import json
from pathlib import Path

from django.db import migrations


def load_catalogue(apps, schema_editor):
    Drug = apps.get_model("care", "Drug")
    rows = json.loads((Path(__file__).resolve().parent.parent / "catalogue.json").read_text("utf-8"))
    for row in rows:
        row = {**row, "cis": row["cis"] or ""}
        Drug.objects.update_or_create(code=row["code"], defaults=row)


class Migration(migrations.Migration):
    dependencies = [("care", "0001_initial")]
    operations = [migrations.RunPython(load_catalogue, migrations.RunPython.noop)]
