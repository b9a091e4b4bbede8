"""The foreign keys' own indexes dropped where a composite index or unique constraint leads
with the same column and serves every look-up by it (one B-tree fewer to write per row, and to
build in a bulk load). Only the indexes are dropped: Django's AlterField would also drop and
re-add each foreign key, validating it again over every row."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('care', '0004_open_stays_index'),
        ('directory', '0003_alter_staffmember_role'),
        ('patients', '0004_patient_version'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='prescriptionline',
                    name='prescription',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='lines', to='care.prescription'),
                ),
                migrations.AlterField(
                    model_name='stay',
                    name='establishment',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='stays', to='directory.establishment'),
                ),
                migrations.AlterField(
                    model_name='stay',
                    name='patient',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='stays', to='patients.patient'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS care_prescriptionline_prescription_id_d165ecd2",
                    reverse_sql="CREATE INDEX care_prescriptionline_prescription_id_d165ecd2 ON care_prescriptionline (prescription_id)",
                ),
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS care_stay_establishment_id_d9ee56cc",
                    reverse_sql="CREATE INDEX care_stay_establishment_id_d9ee56cc ON care_stay (establishment_id)",
                ),
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS care_stay_patient_id_ad5381d3",
                    reverse_sql="CREATE INDEX care_stay_patient_id_ad5381d3 ON care_stay (patient_id)",
                ),
            ],
        ),
    ]
