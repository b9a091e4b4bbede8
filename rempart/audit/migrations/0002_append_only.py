"""The audit tables become append-only (a trigger; the grants follow each migrate). Tested in
tests/test_audit_storage.py, forwards and backwards."""

from django.db import migrations


def forwards(apps, schema_editor):
    from rempart.audit import protection

    protection.install(schema_editor.connection)


def backwards(apps, schema_editor):
    from rempart.audit import protection

    protection.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_trail")]
    operations = [migrations.RunPython(forwards, backwards)]
