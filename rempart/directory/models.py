"""Establishments, their services, practitioners and staff. Professional data: stored in clear."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from rempart.lib.identifiers import finess_validator, rpps_validator
from rempart.lib.ids import new_id


class Establishment(models.Model):
    class Kind(models.TextChoices):
        CLINIC = "clinic", "Clinique"
        HEALTH_CENTRE = "health_centre", "Centre de santé"
        NURSING_HOME = "nursing_home", "EHPAD"

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    finess = models.CharField("FINESS", max_length=9, unique=True, validators=[finess_validator])
    name = models.CharField("nom", max_length=200)
    kind = models.CharField("type", max_length=20, choices=Kind.choices)
    city = models.CharField("ville", max_length=100, blank=True)

    class Meta:
        verbose_name = "établissement"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Service(models.Model):
    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    establishment = models.ForeignKey(
        Establishment, on_delete=models.PROTECT, related_name="services"
    )
    code = models.CharField(max_length=20)
    name = models.CharField("nom", max_length=200)

    class Meta:
        verbose_name = "service"
        ordering = ["establishment__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["establishment", "code"], name="service_code_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.establishment.name})"


class Practitioner(models.Model):
    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    rpps = models.CharField("RPPS", max_length=11, unique=True, validators=[rpps_validator])
    family_name = models.CharField("nom", max_length=100)
    given_name = models.CharField("prénom", max_length=100)
    specialty = models.CharField("spécialité", max_length=100)
    internal = models.BooleanField(
        "salarié du groupe",
        default=False,
        help_text="Faux pour un praticien de ville (médecin traitant).",
    )
    establishments = models.ManyToManyField(Establishment, blank=True, related_name="practitioners")
    city = models.CharField("ville d'exercice", max_length=100, blank=True)
    profession = models.CharField("profession", max_length=100, blank=True)
    address_line = models.CharField("adresse d'exercice", max_length=200, blank=True)
    postcode = models.CharField("code postal d'exercice", max_length=5, blank=True)
    # Named by an imported record (a médecin traitant) but not found in the directory yet: the
    # RPPS is well formed, the rest is to be completed (by the next directory import).
    to_complete = models.BooleanField("à compléter", default=False)

    class Meta:
        verbose_name = "praticien"
        ordering = ["family_name", "given_name"]

    def __str__(self) -> str:
        if self.to_complete and not self.family_name:
            return f"Praticien RPPS {self.rpps} (à compléter)"
        return f"Dr {self.given_name} {self.family_name}"


class Role(models.TextChoices):
    PHYSICIAN = "physician", _("Médecin")
    NURSE = "nurse", _("Infirmier·e")
    SECRETARY = "secretary", _("Secrétaire médical·e")
    PHARMACIST = "pharmacist", _("Pharmacien·ne")
    DPO = "dpo", _("Délégué·e à la protection des données")
    SECURITY_OFFICER = "security_officer", _("Responsable sécurité")
    AUDITOR = "auditor", _("Auditeur·rice")
    TECH_ADMIN = "tech_admin", _("Administrateur·rice technique")
    # The account of a system registered on the FHIR API (lab, pharmacy, regional platform):
    # never logs in to the pages (no password), but carries the system's establishments, its
    # read budget and its lock like any account.
    API_CLIENT = "api_client", _("Système connecté (API FHIR)")


class StaffMember(models.Model):
    """A user's place in the group: role, establishments and services, practitioner record."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff"
    )
    role = models.CharField("rôle", max_length=20, choices=Role.choices)
    establishments = models.ManyToManyField(Establishment, blank=True, related_name="staff")
    services = models.ManyToManyField(Service, blank=True, related_name="staff")
    practitioner = models.OneToOneField(
        Practitioner, null=True, blank=True, on_delete=models.SET_NULL, related_name="staff"
    )

    class Meta:
        verbose_name = "membre du personnel"

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.get_role_display()})"
