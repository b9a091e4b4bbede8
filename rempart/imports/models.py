"""An import job and the lines it refused. The job's checkpoint moves in the same transaction as
each batch, so a crash at any point resumes exactly after the last committed batch."""

from __future__ import annotations

from django.db import models

from rempart.directory.models import Establishment
from rempart.lib.ids import new_id
from rempart.vault.fields import EncryptedJSONField


class ImportJob(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "En cours"
        DONE = "done", "Terminé"

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    file_sha256 = models.CharField(max_length=64)
    file_name = models.CharField(max_length=255)
    mapping = models.CharField(max_length=100)
    establishment = models.ForeignKey(
        Establishment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lines_done = models.PositiveIntegerField(default=0, help_text="Last data line committed.")
    imported = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    warned = models.PositiveIntegerField(default=0)  # imported with a field left out
    # Patient indexes dropped for a first load into an empty table (PostgreSQL), rebuilt at the
    # end; kept here so a crashed job still rebuilds them when it resumes.
    deferred_indexes = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = "import"
        constraints = [
            models.UniqueConstraint(fields=["file_sha256", "mapping"], name="one_job_per_file")
        ]

    def __str__(self) -> str:
        return f"Import {self.file_name}"


class ImportLine(models.Model):
    """A line of an import that needs a look: refused (its values kept sealed until it is
    corrected in the "Reprise des données" page or discarded) or imported with warnings (the
    fields left out). Reasons name fields and rules, never values."""

    class Kind(models.TextChoices):
        REFUSED = "refused", "Refusée"
        WARNING = "warning", "Importée avec avertissement"

    class Status(models.TextChoices):
        OPEN = "open", "À traiter"
        CORRECTED = "corrected", "Corrigée et importée"
        DISCARDED = "discarded", "Écartée"

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="lines")
    line = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    reasons = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    patient_id = models.UUIDField(null=True, blank=True)  # imported (warning) or corrected
    # The refused line as it was ({column: value}), sealed like an identity; emptied when the
    # line is corrected or discarded.
    content = EncryptedJSONField("ligne refusée (chiffrée)", category="identity")
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "line", "kind"], name="one_issue_per_line")
        ]
        indexes = [models.Index(fields=["job", "kind", "status"])]

    def __str__(self) -> str:
        return f"Ligne {self.line}"
