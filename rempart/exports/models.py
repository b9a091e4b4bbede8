"""A controlled export: asked with a purpose, approved by a second person, produced once as an
encrypted, watermarked file that expires. Which patients went out is kept (their ids, in order,
with the SHA-256 of the list in the audit trail), so a copy found later can be traced back."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from rempart.directory.models import Establishment, Service
from rempart.lib.ids import new_id
from rempart.vault.fields import EncryptedBytesField, EncryptedJSONField


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "XLSX (Excel)"
    NDJSON = "ndjson", "NDJSON"
    FHIR = "fhir", "NDJSON FHIR (Patient FR Core, Bulk Data)"


class ExportPurpose(models.TextChoices):
    """Why patients leave the system: a list, the details sealed (free text could name one)."""

    CARE_TRANSFER = "care_transfer", _("Transfert de la prise en charge à un autre soignant")
    RECALL = "recall", _("Campagne de rappel ou de dépistage")
    RESEARCH = "research", _("Étude ou recherche autorisée")
    QUALITY = "quality", _("Évaluation de la qualité des soins")
    LEGAL = "legal", _("Réquisition judiciaire ou demande d'une autorité")
    MIGRATION = "migration", _("Migration vers un autre logiciel")


class RecipientKind(models.TextChoices):
    AGE = "age", _("Clé publique age du destinataire")
    PASSPHRASE = "passphrase", _("Phrase de passe à usage unique, montrée une fois")


class ExportStatus(models.TextChoices):
    REQUESTED = "requested", _("En attente d'approbation")
    APPROVED = "approved", _("Approuvé, à produire")
    REFUSED = "refused", _("Refusé")
    READY = "ready", _("Produit, téléchargeable")
    EXPIRED = "expired", _("Expiré (fichier détruit)")


class ExportRequest(models.Model):
    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    status = models.CharField(max_length=10, choices=ExportStatus.choices,
                              default=ExportStatus.REQUESTED)  # fmt: skip
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="+")  # fmt: skip
    requested_at = models.DateTimeField(auto_now_add=True)
    purpose = models.CharField(max_length=20, choices=ExportPurpose.choices)
    # {"detail": ..., "decision_note": ...}: what people typed, sealed like clinical text.
    notes = EncryptedJSONField("précisions (chiffrées)", category="clinical")
    # Which patients: those with an IPP in the establishment, or, with a service, those with a
    # stay in it (since the date, when given).
    establishment = models.ForeignKey(Establishment, on_delete=models.PROTECT, related_name="+")
    service = models.ForeignKey(Service, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+")  # fmt: skip
    stays_since = models.DateField(null=True, blank=True)
    fields = models.JSONField(default=list)  # field groups, see rempart.exports.formats.GROUPS
    format = models.CharField(max_length=8, choices=ExportFormat.choices)
    recipient_kind = models.CharField(max_length=12, choices=RecipientKind.choices)
    recipient = models.CharField(max_length=100, blank=True)  # an age public key (not secret)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+")  # fmt: skip
    decided_at = models.DateTimeField(null=True, blank=True)
    produced_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    downloads = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)  # patients written (canary rows not counted)
    file_sha256 = models.CharField(max_length=64, blank=True)  # of the encrypted file
    # The watermark: derived from the index root (PRF) under this key id and the export's id.
    mark_key_id = models.BigIntegerField(null=True, blank=True)
    # The exported patients' ids (16 bytes each, sorted), sealed: in clear, a dump next to a
    # leaked file would tell the canary rows (those of no listed patient). What the analyser
    # compares a sample with; its SHA-256 is in the audit event of the production.
    patient_ids = EncryptedBytesField("patients exportés (chiffrés)", category="identity")
    # The export's own canary rows, as written in the file (sealed like identities).
    canary_rows = EncryptedJSONField("lignes leurres (chiffrées)", category="identity")

    class Meta:
        verbose_name = "export"
        indexes = [models.Index(fields=["status", "requested_at"])]

    def __str__(self) -> str:
        return f"Export {self.id}"
