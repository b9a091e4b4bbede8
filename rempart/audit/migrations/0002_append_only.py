"""The audit tables become append-only (trigger; grants on PostgreSQL). Tested in
tests/test_audit_storage.py, forwards and backwards."""

from django.conf import settings
from django.db import migrations


def forwards(apps, schema_editor):
    from rempart.audit import protection

    protection.install(schema_editor.connection, settings.REMPART_DB_APP_ROLE)


def backwards(apps, schema_editor):
    from rempart.audit import protection

    protection.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_trail")]
    operations = [migrations.RunPython(forwards, backwards)]
