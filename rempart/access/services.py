"""Writes of the access floor: break-the-glass and its review, step-up, locks lifted, second
factor enrolment, canary patients planted. Each one is recorded in the audit trail."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rempart.access import policy
from rempart.access.alerts import alert_once, alert_raise
from rempart.access.models import (
    AccountLock,
    ActivationCode,
    AlertKind,
    BreakGlass,
    BreakGlassReason,
    CanaryMark,
    Review,
    SealedTOTPDevice,
    Severity,
    StepUp,
)
from rempart.audit.context import Actor
from rempart.audit.models import Action, Outcome, Purpose
from rempart.audit.services import event_record
from rempart.directory.models import Role
from rempart.patients.models import Patient
from rempart.vault.keystore import get_vault

MIN_JUSTIFICATION = 15


def break_glass_declare(
    *, actor: Actor, patient_id: uuid.UUID, reason: str, justification: str
) -> BreakGlass:
    """An emergency access to one patient outside the care relationship, for a few hours:
    recorded, alerted to the DPO, queued for review."""
    policy.authorise_role(actor, policy.READERS)
    errors: dict[str, Any] = {}
    if reason not in BreakGlassReason.values:
        errors["reason"] = _("Choisissez un motif dans la liste.")
    if len(justification.strip()) < MIN_JUSTIFICATION:
        errors["justification"] = (
            f"Expliquez la situation en quelques mots (au moins {MIN_JUSTIFICATION} caractères)."
        )
    if errors:
        raise ValidationError(errors)
    if not Patient.objects.filter(pk=patient_id).exists():
        raise policy.AccessDenied()
    if policy.is_canary(patient_id):  # a leurre cannot be reached by declaring an emergency
        policy.account_lock(actor, reason="bris de glace sur un dossier leurre",
                            kind=AlertKind.CANARY, severity=Severity.CRITICAL,
                            patient_id=patient_id)  # fmt: skip
        raise policy.AccountLocked()
    assert actor.user_id is not None  # noqa: S101  # authorise_role refuses anonymous actors
    now, hours = timezone.now(), settings.REMPART_BREAK_GLASS_HOURS
    with transaction.atomic():
        declared = BreakGlass(user_id=actor.user_id, patient_id=patient_id, reason=reason,
                              justification=justification.strip(), declared_at=now,
                              expires_at=now + dt.timedelta(hours=hours))  # fmt: skip
        declared.save(force_insert=True)
        event_record(actor.for_purpose(Purpose.BREAK_GLASS), Action.BREAK_GLASS,
                     resource_type="BreakGlass", resource_id=declared.pk, patient_id=patient_id,
                     detail={"reason": reason, "hours": hours})  # fmt: skip
    alert_raise(severity=Severity.WARNING, kind=AlertKind.BREAK_GLASS, audience=Role.DPO,
                user_id=actor.user_id, patient_id=patient_id,
                message=f"Bris de glace par {actor.username} ({policy.role_label(actor.role)}) : "
                        f"{BreakGlassReason(reason).label}. À examiner.")  # fmt: skip
    _break_glass_rate(actor, now)
    return declared


def _break_glass_rate(actor: Actor, now: dt.datetime) -> None:
    """More than a few declarations in a day by one account: the security officer is told
    (once a day), whatever the reasons given."""
    if actor.user_id is None:
        return
    since = now - dt.timedelta(hours=24)
    count = BreakGlass.objects.filter(user_id=actor.user_id, declared_at__gte=since).count()
    if count <= settings.REMPART_BREAK_GLASS_PER_DAY:
        return
    alert_once(since=since, severity=Severity.CRITICAL, kind=AlertKind.BREAK_GLASS_RATE,
               audience=Role.SECURITY_OFFICER, user_id=actor.user_id,
               message=f"{actor.username} ({policy.role_label(actor.role)}) a déclaré {count} "
                       "bris de glace en 24 h : vérifiez l'usage du compte.")  # fmt: skip


def break_glass_review(
    *, actor: Actor, declared: BreakGlass, verdict: str, note: str, lock: bool = False
) -> None:
    """The DPO marks a break-the-glass justified or not, with a note. An unjustified one alerts
    the security officer and ends whatever emergency access is still running; with `lock`, the
    account is locked until the security officer lifts it."""
    policy.authorise_role(actor, {Role.DPO})
    if verdict not in (Review.JUSTIFIED, Review.UNJUSTIFIED):
        raise ValidationError({"verdict": _("Justifié ou injustifié.")})
    if not note.strip():
        raise ValidationError({"note": _("Une note motive la décision.")})
    with transaction.atomic():
        locked = BreakGlass.objects.select_for_update().get(pk=declared.pk)
        if locked.review != Review.PENDING:
            raise ValidationError(_("Cet accès a déjà été examiné."), code="reviewed")
        locked.review, locked.review_note = verdict, note.strip()
        locked.reviewed_by_id, locked.reviewed_at = actor.user_id, timezone.now()
        locked.save(update_fields=["review", "review_note", "reviewed_by", "reviewed_at"])
        event_record(actor.for_purpose(Purpose.SECURITY), Action.REVIEW,
                     resource_type="BreakGlass", resource_id=locked.pk,
                     detail={"verdict": verdict,
                             "lock": lock and verdict == Review.UNJUSTIFIED})  # fmt: skip
        if verdict != Review.UNJUSTIFIED:
            return
        now = timezone.now()
        BreakGlass.objects.filter(user_id=locked.user_id, expires_at__gt=now).update(expires_at=now)
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(pk=locked.user_id)
    culprit = Actor(username=user.get_username(), role=_role_of(locked.user_id),
                    user_id=locked.user_id)  # fmt: skip
    message = (f"Bris de glace de {culprit.username} ({policy.role_label(culprit.role)}) jugé "
               f"injustifié par {actor.username}.")  # fmt: skip
    if lock:
        policy.account_lock(culprit, reason="bris de glace jugé injustifié",
                            kind=AlertKind.UNJUSTIFIED, severity=Severity.CRITICAL,
                            patient_id=locked.patient_id, by=actor)  # fmt: skip
    else:
        alert_raise(severity=Severity.WARNING, kind=AlertKind.UNJUSTIFIED,
                    audience=Role.SECURITY_OFFICER, user_id=locked.user_id,
                    patient_id=locked.patient_id,
                    message=f"{message} À verrouiller au besoin (page sécurité).")  # fmt: skip


def _role_of(user_id: int) -> str:
    from rempart.directory.models import StaffMember

    staff = StaffMember.objects.filter(user_id=user_id).only("role").first()
    return staff.role if staff is not None else ""


def step_up(*, actor: Actor, device: SealedTOTPDevice, code: str) -> bool:
    """The second factor given again past the budget. Three wrong codes in a row lock."""
    ok = device.verify_token(code)
    event_record(actor.for_purpose(Purpose.SECURITY), Action.MFA, resource_type="User",
                 resource_id=str(actor.user_id), outcome=Outcome.SUCCESS if ok else Outcome.DENIED,
                 detail={"step": "step_up"})  # fmt: skip
    if ok:
        StepUp.objects.create(user_id=device.user_id, at=timezone.now())
    elif device.throttling_failure_count >= settings.REMPART_STEP_UP_FAILURES:
        policy.account_lock(actor, reason="second facteur refusé à répétition",
                            kind=AlertKind.LOCK, severity=Severity.CRITICAL)  # fmt: skip
    return ok


def account_lock_decided(*, actor: Actor, user_id: int, reason: str) -> None:
    """The security officer locks an account (an alert, a stolen laptop), with a reason."""
    policy.authorise_role(actor, {Role.SECURITY_OFFICER})
    if len(reason.strip()) < MIN_JUSTIFICATION:
        raise ValidationError({"reason": _("Motivez le verrouillage (au moins 15 caractères).")})
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise ValidationError({"user_id": _("Compte inconnu.")})
    target = Actor(username=user.get_username(), role=_role_of(user_id), user_id=user_id)
    policy.account_lock(target, reason=reason.strip(), kind=AlertKind.LOCK,
                        severity=Severity.WARNING, by=actor)  # fmt: skip


def account_unlock(*, actor: Actor, user_id: int, reason: str) -> int:
    """The security officer lifts a lock, with a reason. Returns how many locks were lifted."""
    policy.authorise_role(actor, {Role.SECURITY_OFFICER})
    if len(reason.strip()) < MIN_JUSTIFICATION:
        raise ValidationError({"reason": _("Motivez le déverrouillage (au moins 15 caractères).")})
    with transaction.atomic():
        lifted = AccountLock.objects.filter(user_id=user_id, lifted_at=None).update(
            lifted_at=timezone.now(), lifted_by_id=actor.user_id, lift_reason=reason.strip()[:200]
        )
        policy.lock_seen(user_id, False)
        event_record(actor.for_purpose(Purpose.SECURITY), Action.UNLOCK, resource_type="User",
                     resource_id=str(user_id), detail={"locks": lifted})  # fmt: skip
    from axes.handlers.proxy import AxesProxyHandler  # the password lockout goes too
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=user_id).first()
    if user is not None:
        AxesProxyHandler.reset_attempts(username=user.get_username())
    return lifted


# --- second factor ------------------------------------------------------------------------------


ACTIVATION_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read out by phone
ACTIVATION_FAILURES = 5


def _activation_digest(code: str) -> bytes:
    folded = "".join(c for c in code.upper() if c.isalnum())
    return get_vault().indexer.tag("activation", folded.encode())


def activation_code_issue(*, actor: Actor, user_id: int) -> str:
    """A fresh one-time activation code for the account (returned once, to be given in hand):
    earlier codes are withdrawn and the account's authenticator is reset, so a lost or stolen
    phone is replaced the same way as a first enrolment."""
    policy.authorise_role(actor, {Role.SECURITY_OFFICER})
    from django.contrib.auth import get_user_model

    if not get_user_model().objects.filter(pk=user_id).exists():
        raise ValidationError({"user_id": _("Compte inconnu.")})
    raw = "".join(secrets.choice(ACTIVATION_ALPHABET) for _ in range(12))
    now = timezone.now()
    with transaction.atomic():
        ActivationCode.objects.filter(user_id=user_id, used_at=None).update(expires_at=now)
        removed, _counts = SealedTOTPDevice.objects.filter(user_id=user_id).delete()
        ActivationCode.objects.create(
            user_id=user_id, digest=_activation_digest(raw), issued_by_id=actor.user_id,
            issued_at=now,
            expires_at=now + dt.timedelta(hours=settings.REMPART_ACTIVATION_HOURS),
        )  # fmt: skip
        event_record(actor.for_purpose(Purpose.SECURITY), Action.MFA, resource_type="User",
                     resource_id=str(user_id),
                     detail={"step": "activation_issued", "devices_removed": removed})  # fmt: skip
    return "-".join(raw[i : i + 4] for i in range(0, 12, 4))


def activation_code_check(*, actor: Actor, user_id: int, code: str) -> ActivationCode | None:
    """The account's running activation code if `code` is it; wrong codes are counted, and
    too many lock the account (someone holding only the password is guessing)."""
    now = timezone.now()
    with transaction.atomic():
        running = (
            ActivationCode.objects.select_for_update()
            .filter(user_id=user_id, used_at=None, expires_at__gt=now)
            .order_by("-issued_at")
            .first()
        )
        ok = running is not None and secrets.compare_digest(
            bytes(running.digest), _activation_digest(code)
        )
        if running is not None and not ok:
            running.failures += 1
            running.save(update_fields=["failures"])
        event_record(actor.for_purpose(Purpose.SECURITY), Action.MFA, resource_type="User",
                     resource_id=str(user_id), outcome=Outcome.SUCCESS if ok else Outcome.DENIED,
                     detail={"step": "activation"})  # fmt: skip
    if running is not None and not ok and running.failures >= ACTIVATION_FAILURES:
        ActivationCode.objects.filter(pk=running.pk).update(expires_at=now)
        policy.account_lock(actor, reason="codes d'activation refusés à répétition",
                            kind=AlertKind.LOGIN, severity=Severity.WARNING)  # fmt: skip
    return running if ok else None


def totp_device_create(*, actor: Actor, user_id: int) -> SealedTOTPDevice:
    """A new, unconfirmed device with a fresh secret (sealed): the enrolment page shows its QR
    code, and the first good code confirms it."""
    SealedTOTPDevice.objects.filter(user_id=user_id, confirmed=False).delete()
    device = SealedTOTPDevice(user_id=user_id, name="TOTP", confirmed=False,
                              secret=secrets.token_hex(20))  # fmt: skip
    device.save(force_insert=True)
    return device


def totp_device_confirm(
    *, actor: Actor, device: SealedTOTPDevice, code: str, activation: ActivationCode | None = None
) -> bool:
    """The first good code confirms the device, and spends the activation code that opened the
    enrolment (the console's staff creation passes none)."""
    ok = device.verify_token(code)
    if ok:
        with transaction.atomic():
            if activation is not None:
                spent = ActivationCode.objects.filter(
                    pk=activation.pk, used_at=None, expires_at__gt=timezone.now()
                ).update(used_at=timezone.now())
                if not spent:
                    raise ValidationError(_("Code d'activation expiré ou déjà utilisé."),
                                          code="activation")  # fmt: skip
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            SealedTOTPDevice.objects.filter(user_id=device.user_id).exclude(pk=device.pk).delete()
    event_record(actor.for_purpose(Purpose.SECURITY), Action.MFA, resource_type="User",
                 resource_id=str(device.user_id),
                 outcome=Outcome.SUCCESS if ok else Outcome.DENIED,
                 detail={"step": "enrolment"})  # fmt: skip
    return ok


# --- canaries -----------------------------------------------------------------------------------


def canary_marks_rekey(model: type[Any], patient_ids: list[uuid.UUID]) -> int:
    """Re-tag the canary marks of these patients under the primary index key (called by
    `rempart keys reindex` for each batch of patients, in the batch's transaction); returns how
    many marks moved. A mark's tag is keyed by the index root, so a rotated root needs it."""
    if model is not Patient:
        return 0
    indexer = get_vault().indexer
    primary = indexer.primary_key_id
    tags = {policy.canary_tag(pid, k): (pid, k) for pid in patient_ids for k in indexer.key_ids}
    moved = 0
    for mark in CanaryMark.objects.filter(tag__in=list(tags)):
        patient_id, key_id = tags[bytes(mark.tag)]
        if key_id == primary and mark.index_key_id == primary:
            continue
        CanaryMark.objects.filter(tag=mark.tag).update(
            tag=policy.canary_tag(patient_id), index_key_id=primary
        )
        moved += 1
    return moved


def canary_decoys_rekey() -> int:
    """After a full re-index, the marks still under an older index key are the decoys (every
    canary's own mark moved with its patient's batch): they get fresh random tags under the
    primary key, so the old key can be disabled and nothing tells decoys from marks. Returns
    how many moved."""
    from rempart.vault import rotation

    if rotation.count_to_reindex() > 0:
        return 0
    primary = get_vault().indexer.primary_key_id
    stale = list(CanaryMark.objects.exclude(index_key_id=primary).values_list("tag", flat=True))
    with transaction.atomic():
        CanaryMark.objects.filter(tag__in=stale).delete()
        CanaryMark.objects.bulk_create([CanaryMark(tag=secrets.token_bytes(16)) for _ in stale])
    return len(stale)
