"""The foreign keys' own indexes dropped where a composite index or unique constraint leads
with the same column and serves every look-up by it (one B-tree fewer to write per row, and to
build in a bulk load). Only the indexes are dropped: Django's AlterField would also drop and
re-add each foreign key, validating it again over every row."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('directory', '0003_alter_staffmember_role'),
        ('patients', '0004_patient_version'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='patientidentifier',
                    name='establishment',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='directory.establishment'),
                ),
                migrations.AlterField(
                    model_name='patientidentifier',
                    name='patient',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='identifiers', to='patients.patient'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS patients_patientidentifier_establishment_id_a52bfb23",
                    reverse_sql="CREATE INDEX patients_patientidentifier_establishment_id_a52bfb23 ON patients_patientidentifier (establishment_id)",
                ),
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS patients_patientidentifier_patient_id_25c95a72",
                    reverse_sql="CREATE INDEX patients_patientidentifier_patient_id_25c95a72 ON patients_patientidentifier (patient_id)",
                ),
            ],
        ),
    ]
