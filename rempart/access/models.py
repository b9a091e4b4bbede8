"""Who may see which patient beyond the care relationship, and what stops a scraper:
break-the-glass declarations, account locks, read budgets, canary marks, security alerts, and the
second factor (TOTP) with its secret sealed by the vault."""

from __future__ import annotations

import secrets
import time
from base64 import b32encode
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP

from rempart.lib.ids import new_id
from rempart.vault.fields import EncryptedTextField, IndexKeyField


class BreakGlassReason(models.TextChoices):
    EMERGENCY = "emergency", _("Urgence vitale")
    ON_CALL = "on_call", _("Garde ou astreinte, patient non rattaché")
    TRANSFER = "transfer", _("Transfert en cours depuis un autre service")
    CONTINUITY = "continuity", _("Continuité des soins (remplacement d'un confrère)")
    OTHER = "other", _("Autre (préciser)")


class Review(models.TextChoices):
    PENDING = "pending", _("À examiner")
    JUSTIFIED = "justified", _("Justifié")
    UNJUSTIFIED = "unjustified", _("Injustifié")


class BreakGlass(models.Model):
    """An emergency access outside the care relationship: one user, one patient, a few hours."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    patient_id = models.UUIDField(db_index=True)
    reason = models.CharField(max_length=20, choices=BreakGlassReason.choices)
    # Free text may hold clinical detail: sealed like a stay reason.
    justification = EncryptedTextField(category="clinical")
    declared_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    review = models.CharField(max_length=12, choices=Review.choices, default=Review.PENDING)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = EncryptedTextField(category="clinical")

    class Meta:
        indexes = [models.Index(fields=["user", "patient_id", "expires_at"])]

    def __str__(self) -> str:
        return f"bris de glace {self.id}"


class Severity(models.TextChoices):
    INFO = "info", _("Information")
    WARNING = "warning", _("Avertissement")
    CRITICAL = "critical", _("Critique")


class AlertKind(models.TextChoices):
    BREAK_GLASS = "break_glass", _("Bris de glace")
    BUDGET = "budget", _("Budget de lecture dépassé")
    CANARY = "canary", _("Dossier leurre ouvert")
    LOCK = "lock", _("Compte verrouillé")
    LOGIN = "login", _("Connexion")
    CARE = "care", _("Prises en charge inhabituelles")
    UNJUSTIFIED = "bg_unjust", _("Bris de glace injustifié")
    BREAK_GLASS_RATE = "bg_rate", _("Bris de glace répétés")
    PEERS = "peers", _("Lectures très au-dessus des pairs")
    SESSIONS = "sessions", _("Sessions inconnues en nombre")
    EXPORT = "export", _("Demande d'export à décider")


class Alert(models.Model):
    """A security alert. Its message names accounts and ids, never patient data."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(db_index=True)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    kind = models.CharField(max_length=12, choices=AlertKind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    patient_id = models.UUIDField(null=True, blank=True)
    message = models.TextField()
    audience = models.CharField(max_length=20)  # "dpo" or "security_officer"
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"alerte {self.id} ({self.severity})"


class AccountLock(models.Model):
    """A locked account: no login, no request, until the security officer lifts it with a reason."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_locks"
    )
    reason = models.CharField(max_length=200)
    locked_at = models.DateTimeField()
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lift_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "lifted_at"])]

    def __str__(self) -> str:
        return f"verrou {self.id}"


class StepUp(models.Model):
    """The user gave their second factor again (past their read budget)."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"step-up {self.id}"


class PatientSeen(models.Model):
    """The read-budget ledger (database backend): each patient a user saw, once per hour."""

    id = models.BigAutoField(primary_key=True)
    user_id = models.IntegerField()
    patient_id = models.UUIDField()
    hour = models.DateTimeField()
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user_id", "patient_id", "hour"], name="seen_once")
        ]
        indexes = [models.Index(fields=["user_id", "seen_at"])]

    def __str__(self) -> str:
        return f"vu {self.patient_id}"


class CareOpening(models.Model):
    """A stay that brought a patient outside the user's care into it (planned or admitted by
    the user). `new_here`: known elsewhere in the group, never seen in this establishment."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    patient_id = models.UUIDField()
    stay_id = models.UUIDField()
    establishment_id = models.UUIDField()
    at = models.DateTimeField()
    new_here = models.BooleanField()

    class Meta:
        indexes = [models.Index(fields=["user", "at"]), models.Index(fields=["stay_id"])]

    def __str__(self) -> str:
        return f"prise en charge {self.id}"


class CanaryMark(models.Model):
    """A canary patient, named by a keyed tag of its id, among random decoy tags: the table
    says neither which stored patients are canaries (the key is outside the database), nor how
    many there are, nor where (rempart.access.canaries)."""

    tag = models.BinaryField(primary_key=True)
    # the index key the tag was made under (`rempart keys reindex` moves it to the primary)
    index_key_id = IndexKeyField()

    def __str__(self) -> str:
        return "leurre"


class ActivationCode(models.Model):
    """A one-time code the security officer gives a person (in hand, by phone) to turn on their
    second factor: whoever holds only the password cannot bind an authenticator to the account.
    Only a keyed hash of the code is stored; it expires, and is spent by the enrolment."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    digest = models.BinaryField()
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["user", "expires_at"])]

    def __str__(self) -> str:
        return f"code d'activation {self.id}"


def _random_id() -> int:
    return secrets.randbits(62) + 1


class SealedTOTPDevice(TimestampMixin, ThrottlingMixin, Device):
    """django-otp's TOTP device with its secret sealed by the vault (category `staff`), never
    stored as plain hex. Replays are refused: a code is accepted once (`last_t`)."""

    # django-otp names devices "<model>/<integer id>": an integer made here, not by the database,
    # so the secret can be sealed (bound to the row id) before the INSERT.
    id = models.BigIntegerField(primary_key=True, default=_random_id, editable=False)
    secret = EncryptedTextField(category="staff")  # hex, 20 random bytes
    step = models.PositiveSmallIntegerField(default=30)
    digits = models.PositiveSmallIntegerField(default=6)
    tolerance = models.PositiveSmallIntegerField(default=1)
    last_t = models.BigIntegerField(default=-1)

    class Meta(Device.Meta):
        verbose_name = "appareil TOTP"

    @property
    def bin_key(self) -> bytes:
        return bytes.fromhex(self.secret or "")

    def totp(self, at: float | None = None) -> TOTP:
        totp = TOTP(self.bin_key, self.step, 0, self.digits, 0)
        totp.time = time.time() if at is None else at
        return totp

    def verify_token(self, token: Any) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        try:
            code = int(str(token).strip())
        except ValueError:
            code = -1
        totp = self.totp()
        verified = code >= 0 and totp.verify(code, self.tolerance, self.last_t + 1)
        if verified:
            self.last_t = totp.t()
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
        else:
            self.throttle_increment(commit=True)
        return bool(verified)

    def get_throttle_factor(self) -> int:
        return 1

    @property
    def config_url(self) -> str:
        label = quote(f"Rempart:{self.user.get_username()}")
        secret = b32encode(self.bin_key).decode()
        query = urlencode({"secret": secret, "issuer": "Rempart", "digits": self.digits,
                           "period": self.step, "algorithm": "SHA1"})  # fmt: skip
        return f"otpauth://totp/{label}?{query}"
