"""Stays, prescriptions and their lines, and the drug catalogue.

Stay dates stay clear (access decisions need them); reasons and every prescription line are
encrypted under the clinical keyset.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from rempart.directory.models import Establishment, Practitioner, Service
from rempart.lib.ids import new_id
from rempart.patients.models import Patient
from rempart.vault.fields import EncryptedJSONField, EncryptedTextField

CLINICAL = "clinical"


class Drug(models.Model):
    """A medicine of the shipped catalogue (public data). CIS only where it is known for sure."""

    code = models.SlugField(primary_key=True, max_length=60)
    name = models.CharField("dénomination", max_length=200)
    form = models.CharField("forme", max_length=100)
    strength = models.CharField("dosage", max_length=100)
    atc = models.CharField("code ATC", max_length=7)
    cis = models.CharField("code CIS", max_length=8, blank=True, default="")

    class Meta:
        verbose_name = "médicament"
        ordering = ["name", "strength"]

    def __str__(self) -> str:
        return f"{self.name} {self.strength}, {self.form}"


class StayKind(models.TextChoices):
    FULL = "full", _("Hospitalisation complète")
    DAY_CASE = "day_case", _("Hospitalisation de jour")
    CONSULTATION = "consultation", _("Consultation")
    EMERGENCY = "emergency", _("Urgences")
    RESIDENCE = "residence", _("Hébergement en EHPAD")


class Stay(models.Model):
    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    # No index of their own: the two (x, planned_admission) indexes below lead with them and
    # serve every look-up by either, so a stay is written into two B-trees fewer (and a bulk
    # load builds two fewer on 1.1 million stays).
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="stays", db_index=False
    )
    establishment = models.ForeignKey(
        Establishment, on_delete=models.PROTECT, related_name="stays", db_index=False
    )
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="stays")
    kind = models.CharField("type de séjour", max_length=20, choices=StayKind.choices)
    planned_admission = models.DateTimeField("entrée prévue")
    planned_discharge = models.DateTimeField("sortie prévue", null=True, blank=True)
    admitted_at = models.DateTimeField("entrée réelle", null=True, blank=True)
    discharged_at = models.DateTimeField("sortie réelle", null=True, blank=True)
    reason = EncryptedTextField("motif", category=CLINICAL)
    cancelled_at = models.DateTimeField("annulé le", null=True, blank=True)

    class Meta:
        verbose_name = "séjour"
        indexes = [
            models.Index(fields=["establishment", "planned_admission"]),
            models.Index(fields=["patient", "planned_admission"]),
            # The ward lists (the home page of every desk and ward): stays still open, a few
            # percent of all stays. Without it the list scanned every stay of the
            # establishment (190 ms at 760,000 patients, every home page).
            models.Index(
                fields=["establishment", "planned_admission"],
                condition=Q(discharged_at__isnull=True, cancelled_at__isnull=True),
                name="stay_open_by_place",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(planned_discharge__isnull=True)
                | Q(planned_discharge__gte=F("planned_admission")),
                name="stay_planned_discharge_after_admission",
                violation_error_message="La sortie prévue précède l'entrée prévue.",
            ),
            models.CheckConstraint(
                condition=Q(discharged_at__isnull=True)
                | (Q(admitted_at__isnull=False) & Q(discharged_at__gte=F("admitted_at"))),
                name="stay_discharge_after_admission",
                violation_error_message="La sortie précède l'entrée.",
            ),
        ]

    def __str__(self) -> str:
        return f"Séjour {self.id}"


class PrescriptionStatus(models.TextChoices):
    DRAFT = "draft", _("Brouillon")
    SIGNED = "signed", _("Signée")


class SignedPrescriptionError(ValidationError):
    def __init__(self) -> None:
        super().__init__("Une ordonnance signée ne peut plus être modifiée.", code="signed")


class Prescription(models.Model):
    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="prescriptions")
    stay = models.ForeignKey(
        Stay, null=True, blank=True, on_delete=models.PROTECT, related_name="prescriptions"
    )
    prescriber = models.ForeignKey(Practitioner, on_delete=models.PROTECT, related_name="+")
    prescribed_at = models.DateTimeField("date")
    status = models.CharField(
        max_length=10, choices=PrescriptionStatus.choices, default=PrescriptionStatus.DRAFT
    )
    signed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "ordonnance"
        constraints = [
            models.CheckConstraint(
                condition=(Q(status="signed") & Q(signed_at__isnull=False))
                | (Q(status="draft") & Q(signed_at__isnull=True)),
                name="prescription_signed_has_date",
            )
        ]

    def __str__(self) -> str:
        return f"Ordonnance {self.id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Defence in depth behind the services: a signed prescription is never rewritten.
        if (
            not self._state.adding
            and Prescription.objects.filter(pk=self.pk, status=PrescriptionStatus.SIGNED).exists()
        ):
            raise SignedPrescriptionError()
        super().save(*args, **kwargs)


class Route(models.TextChoices):
    ORAL = "oral", _("Voie orale")
    IV = "iv", _("Intraveineuse")
    SC = "sc", _("Sous-cutanée")
    IM = "im", _("Intramusculaire")
    INHALED = "inhaled", _("Inhalée")
    CUTANEOUS = "cutaneous", _("Cutanée")
    RECTAL = "rectal", _("Rectale")


class PrescriptionLine(models.Model):
    """One drug of a prescription. Everything it says (which drug, how) is one ciphertext: even the
    drug alone would tell a diagnosis."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    # No index of its own: line_position_unique (prescription, position) leads with it.
    prescription = models.ForeignKey(
        Prescription, on_delete=models.CASCADE, related_name="lines", db_index=False
    )
    position = models.PositiveSmallIntegerField()
    content = EncryptedJSONField("prescription", category=CLINICAL)

    class Meta:
        verbose_name = "ligne d'ordonnance"
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(
                fields=["prescription", "position"], name="line_position_unique"
            )
        ]

    def __str__(self) -> str:
        return f"Ligne {self.position}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if Prescription.objects.filter(
            pk=self.prescription_id, status=PrescriptionStatus.SIGNED
        ).exists():
            raise SignedPrescriptionError()
        super().save(*args, **kwargs)
