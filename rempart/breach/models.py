"""A leak analysis: the report (counts, establishments, exports and accounts named; never a
patient's values) and which patients the sample holds, with the categories of their data it
shows (for the notifications)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models

from rempart.lib.ids import new_id
from rempart.vault.fields import EncryptedJSONField, EncryptedTextField


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


# --- the breach file (GDPR Art. 33 and 34) ------------------------------------------------------


class BreachStatus(models.TextChoices):
    OPEN = "open", "Ouvert"
    NOTIFIED = "notified", "Notifié à la CNIL"
    CLOSED = "closed", "Clos"


class BreachFile(models.Model):
    """A "dossier de violation": when the group became aware (the 72-hour clock of Art. 33
    runs from then), the facts, the analyses that measured the leak, the decisions taken and by
    whom, the notifications. It can be completed in phases (Art. 33(4)): every step is kept."""

    NOTIFY_WITHIN = dt.timedelta(hours=72)

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    aware_at = models.DateTimeField()
    opened_at = models.DateTimeField(auto_now_add=True)
    opened_by = models.CharField(max_length=150)
    status = models.CharField(max_length=10, choices=BreachStatus.choices,
                              default=BreachStatus.OPEN)  # fmt: skip
    # {"title", "facts", "consequences", "measures_taken", "measures_proposed", "dpo_contact"}:
    # what people typed, sealed like clinical text (it could name a patient).
    notes = EncryptedJSONField("faits et mesures (chiffrés)", category="clinical")
    analyses = models.ManyToManyField(BreachAnalysis, blank=True, related_name="files")
    cnil_notified_at = models.DateTimeField(null=True, blank=True)
    ars_reported_at = models.DateTimeField(null=True, blank=True)
    patients_informed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "dossier de violation"

    def __str__(self) -> str:
        return f"Dossier de violation {self.id}"

    @property
    def deadline(self) -> dt.datetime:
        return self.aware_at + self.NOTIFY_WITHIN


class StepKind(models.TextChoices):
    OPENED = "opened", "Ouverture du dossier"
    FACTS = "facts", "Faits et mesures complétés"
    ANALYSIS = "analysis", "Analyse rattachée"
    DECISION = "decision", "Décision"
    DRAFT = "draft", "Brouillon généré ou modifié"
    CNIL = "cnil", "Notification à la CNIL"
    ARS = "ars", "Signalement à l'ARS et au CERT Santé"
    PATIENTS = "patients", "Information des personnes"
    CLOSED = "closed", "Clôture"


class BreachStep(models.Model):
    """One entry of the file's journal: who did what, when; a decision's wording sealed."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    breach = models.ForeignKey(BreachFile, on_delete=models.CASCADE, related_name="steps")
    at = models.DateTimeField(auto_now_add=True)
    username = models.CharField(max_length=150)
    kind = models.CharField(max_length=10, choices=StepKind.choices)
    summary = models.CharField(max_length=300)  # written by the application: counts and names
    wording = EncryptedTextField("décision (chiffrée)", category="clinical")

    class Meta:
        ordering = ("at", "id")  # ids are time-ordered (UUIDv7)

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.at:%d/%m/%Y %H:%M})"


class DraftKind(models.TextChoices):
    CNIL = "cnil", "Notification à la CNIL (art. 33)"
    ARS = "ars", "Signalement à l'ARS et au CERT Santé (art. L1111-8-2 CSP)"
    LETTER = "letter", "Lettre aux personnes concernées (art. 34)"
    EMAIL = "email", "Courriel aux personnes concernées (art. 34)"
    PUBLIC = "public", "Communication publique (art. 34(3)(c))"


class BreachDraft(models.Model):
    """A draft generated from the file and its analyses, then edited by the DPO (sealed: the
    DPO may add what is known of a patient)."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    breach = models.ForeignKey(BreachFile, on_delete=models.CASCADE, related_name="drafts")
    kind = models.CharField(max_length=8, choices=DraftKind.choices)
    text = EncryptedTextField("texte (chiffré)", category="clinical")
    generated_at = models.DateTimeField()
    edited_at = models.DateTimeField(null=True, blank=True)
    edited_by = models.CharField(max_length=150, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["breach", "kind"],
                                               name="one_draft_per_kind")]  # fmt: skip

    def __str__(self) -> str:
        return self.get_kind_display()


# --- the patients' self-check --------------------------------------------------------------------


class SelfCheckPublication(models.Model):
    """What the public self-check page answers from, for one breach file: a keyed hash of each
    leaked person's identity (family name, first given name, birth date) made with a public salt
    and PBKDF2, the same the browser computes. The server sees only the hash's first `bits`
    (a bucket shared by many people) and answers with every entry of the bucket, padded to
    `pad`; only people in the analysed leak are in it, so the page tells nobody who else is a
    patient."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    breach = models.OneToOneField(BreachFile, on_delete=models.CASCADE, related_name="selfcheck")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150)
    salt = models.BinaryField()  # 16 random bytes, public (sent to the browser)
    iterations = models.PositiveIntegerField()
    bits = models.PositiveSmallIntegerField()  # of the hash that name a bucket
    pad = models.PositiveIntegerField()  # entries in every answer
    people = models.PositiveIntegerField()
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"Vérification publique du dossier {self.breach_id}"


class SelfCheckEntry(models.Model):
    """One leaked identity: its bucket, the first 16 bytes of its hash, and its data
    categories (a bit mask) masked by two further bytes of the hash (readable only by whoever
    knows the identity)."""

    id = models.BigAutoField(primary_key=True)
    publication = models.ForeignKey(SelfCheckPublication, on_delete=models.CASCADE,
                                    related_name="entries", db_index=False,
                                    db_constraint=False)  # fmt: skip
    bucket = models.PositiveIntegerField()
    tag = models.BinaryField()
    masked = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["publication", "bucket"])]

    def __str__(self) -> str:
        return f"Entrée du seau {self.bucket}"


# --- the e-mails to the people concerned ----------------------------------------------------------


class OutboxStatus(models.TextChoices):
    QUEUED = "queued", "En attente"
    SENT = "sent", "Envoyé"
    BOUNCED = "bounced", "Refusé par le serveur du destinataire"
    FAILED = "failed", "Échec après plusieurs essais"


class OutboxMessage(models.Model):
    """One e-mail to one person concerned: the address and the text sealed, the status in clear
    (what the outbox page counts), the last error as the server's code only."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    breach = models.ForeignKey(BreachFile, on_delete=models.CASCADE, related_name="outbox")
    patient_id = models.UUIDField()
    address = EncryptedTextField("adresse (chiffrée)", category="contact")
    subject = models.CharField(max_length=200)
    body = EncryptedTextField("texte (chiffré)", category="clinical")
    status = models.CharField(max_length=8, choices=OutboxStatus.choices,
                              default=OutboxStatus.QUEUED)  # fmt: skip
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["breach", "status"])]
        constraints = [models.UniqueConstraint(fields=["breach", "patient_id"],
                                               name="one_message_per_patient")]  # fmt: skip

    def __str__(self) -> str:
        return f"Courriel {self.id} ({self.get_status_display()})"
