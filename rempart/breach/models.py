"""A leak analysis: the report (counts, establishments, exports and accounts named; never a
patient's values) and which patients the sample holds, with the categories of their data it
shows (for the notifications)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from rempart.lib.ids import new_id


class BreachAnalysis(models.Model):
    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+")  # fmt: skip
    username = models.CharField(max_length=150)  # the account or the console that ran it
    file_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64)
    rows = models.PositiveIntegerField()
    report = models.JSONField(default=dict)

    class Meta:
        verbose_name = "analyse de fuite"

    def __str__(self) -> str:
        return f"Analyse {self.id}"


class LeakedPatient(models.Model):
    class Match(models.TextChoices):
        EXACT = "exact", "Correspondance exacte"
        PARTIAL = "partial", "Correspondance partielle"

    id = models.BigAutoField(primary_key=True)
    # Written 700,000 at a time for a whole-group sample, in the analysis's own transaction:
    # no index the unique constraint below does not already give (it leads with the analysis),
    # and no database-side foreign key, whose 700,000 deferred checks cost two seconds at the
    # commit (the rows are deleted with their analysis by the ORM's cascade).
    analysis = models.ForeignKey(BreachAnalysis, on_delete=models.CASCADE, related_name="patients",
                                 db_index=False, db_constraint=False)  # fmt: skip
    patient_id = models.UUIDField()
    match = models.CharField(max_length=8, choices=Match.choices)
    categories = models.JSONField(default=list)  # what the sample shows of this patient
    fields_agreeing = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["analysis", "patient_id"],
                                               name="one_leak_row_per_patient")]  # fmt: skip

    def __str__(self) -> str:
        return f"Patient {self.patient_id} (analyse {self.analysis_id})"
