"""The audit trail: events (insert-only), the hash chain over them, signed checkpoints.

This app knows nothing of patients beyond their surrogate ids: it sits on the bottom floor, and
every app above records its accesses through `rempart.audit.services.event_record`.
Rows here are never updated or deleted (a trigger and the grants forbid it on PostgreSQL).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Action(models.TextChoices):
    READ = "read", _("Consultation")
    SEARCH = "search", _("Recherche")
    CREATE = "create", _("Création")
    UPDATE = "update", _("Modification")
    DELETE = "delete", _("Suppression")
    EXPORT = "export", _("Export")
    IMPORT = "import", _("Import")
    REPORT = "report", _("Relevé des accès")
    LOGIN = "login", _("Connexion")
    LOGIN_FAILED = "login_failed", _("Échec de connexion")
    LOGOUT = "logout", _("Déconnexion")
    MFA = "mfa", _("Second facteur")
    BREAK_GLASS = "break_glass", _("Accès d'urgence")
    LOCK = "lock", _("Verrouillage du compte")
    UNLOCK = "unlock", _("Déverrouillage du compte")
    REVIEW = "review", _("Revue d'un accès d'urgence")
    KEY = "key", _("Opération sur les clés")
    AUDIT = "audit", _("Vérification du journal")
    BREACH = "breach", _("Analyse d'une fuite")


class Outcome(models.TextChoices):
    SUCCESS = "success", _("Réussi")
    DENIED = "denied", _("Refusé")
    NOT_FOUND = "not_found", _("Introuvable")
    FAILED = "failed", _("Échec")


class Purpose(models.TextChoices):
    CARE = "care", _("Soins")
    BREAK_GLASS = "break_glass", _("Urgence (bris de glace)")
    ADMINISTRATION = "admin", _("Administration")
    PATIENT_REQUEST = "patient_request", _("Demande du patient")
    SECURITY = "security", _("Sécurité")


class Event(models.Model):
    """One access: when, who, what, why, from where, and how it ended. Criteria of a search are
    recorded by kind only (which fields were used), never their values."""

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(db_index=True)
    user_id = models.IntegerField(null=True)  # no foreign key: events outlive accounts
    username = models.CharField(max_length=150)
    role = models.CharField(max_length=32)
    establishment_id = models.UUIDField(null=True)
    action = models.CharField(max_length=16, choices=Action.choices)
    resource_type = models.CharField(max_length=40)
    resource_id = models.CharField(max_length=64, blank=True)
    patient_id = models.UUIDField(null=True, db_index=True)
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    ip = models.CharField(max_length=45, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict)

    class Meta:
        db_table = "audit_event"

    def __str__(self) -> str:
        return f"event {self.id} {self.action} by {self.username}"


class EventPatient(models.Model):
    """Every patient an event touched (a search returns several): the index behind the patient
    access report. Derived from the chained events' `patient_id` and `detail["results"]`."""

    id = models.BigAutoField(primary_key=True)
    event_id = models.BigIntegerField(db_index=True)
    patient_id = models.UUIDField(db_index=True)

    class Meta:
        db_table = "audit_event_patient"

    def __str__(self) -> str:
        return f"event {self.event_id} touched patient {self.patient_id}"


class Link(models.Model):
    """The hash chain, written by the sealer: position `seq` holds event `event_id`, and `digest`
    is SHA-256(previous digest + the event's canonical bytes)."""

    seq = models.BigIntegerField(primary_key=True)
    event_id = models.BigIntegerField(unique=True)  # no constraint: a deleted event must show
    digest = models.BinaryField()

    class Meta:
        db_table = "audit_link"

    def __str__(self) -> str:
        return f"link {self.seq} -> event {self.event_id}"


class Checkpoint(models.Model):
    """A signed statement of the chain's head at `seq`; also appended to a file (and optional
    syslog) outside the database."""

    seq = models.BigIntegerField(primary_key=True)
    first_seq = models.BigIntegerField()
    head = models.BinaryField()
    watermark = models.BigIntegerField()  # every event id <= watermark is in the chain
    signed_at = models.DateTimeField()
    signature = models.BinaryField()

    class Meta:
        db_table = "audit_checkpoint"

    def __str__(self) -> str:
        return f"checkpoint {self.first_seq}-{self.seq}"
