"""The one access helper every patient selector and service goes through.

A user sees a patient at one of two levels:
- the desk (identity, contact, the stays of the user's own establishments): a current, upcoming
  or recent stay in one of their establishments (and services, for clinical roles);
- clinical (prescriptions, the stays of every establishment): a clinician (physician, nurse,
  pharmacist) whose service admitted the patient (present, or discharged recently); the médecin
  traitant; or anyone under a break-the-glass declaration still running.
A system on the FHIR API is treated like the desk of its establishments, with the clinical level
for patients admitted there (see API_CLIENT). A planned stay opens the desk level only: planning
stays is how a stolen account would bring patients into its care. Clinical roles with no service
see nothing. Every open and every search is charged to the user's read budget first; canary
patients lock the account at the first opening, and at the first stay planned for one. Callers
turn AccessDenied into the same "not found" they give for a missing patient.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from rempart.access import budgets
from rempart.access.alerts import alert_once, alert_raise
from rempart.access.models import (
    AccountLock,
    AlertKind,
    BreakGlass,
    CanaryMark,
    CareOpening,
    Severity,
    StepUp,
)
from rempart.audit.context import SYSTEM_ROLE, Actor
from rempart.audit.models import Action, Outcome, Purpose
from rempart.audit.services import event_record
from rempart.care.models import Stay
from rempart.directory.models import Role
from rempart.lib.ids import new_id
from rempart.patients.models import Patient
from rempart.vault.keystore import get_vault

CLINICAL = frozenset({Role.PHYSICIAN, Role.NURSE, Role.PHARMACIST})
# A system on the FHIR API (lab, pharmacy of an establishment) reads like the desk of its
# establishments, and the clinical content of the patients admitted there; its scopes narrow it.
API_CLIENT = Role.API_CLIENT
READERS = CLINICAL | {Role.SECRETARY, API_CLIENT}


class AccessDenied(Exception):
    """Outside the user's care relationship (shown to the user as "not found")."""


class StepUpRequired(Exception):
    """Past the read budget: the second factor must be given again before anything is shown."""

    def __init__(self) -> None:
        super().__init__(
            "Budget de consultation atteint : confirmez votre identité avec votre second facteur."
        )


class AccountLocked(Exception):
    """The account is locked; only the security officer can lift it."""

    def __init__(self) -> None:
        super().__init__(
            "Compte verrouillé par mesure de sécurité : contactez le responsable sécurité."
        )


# --- locks ----------------------------------------------------------------------------------------


_locks_seen: ContextVar[dict[int, bool] | None] = ContextVar("rempart_locks_seen", default=None)


@contextmanager
def lock_checks_per_request() -> Iterator[None]:
    """Within one request, an account's lock is read from the database once (a page checked it
    three or four times); a lock set during the request is seen at once."""
    token = _locks_seen.set({})
    try:
        yield
    finally:
        _locks_seen.reset(token)


def is_locked(user_id: int | None) -> bool:
    if user_id is None:
        return False
    seen = _locks_seen.get()
    if seen is not None and user_id in seen:
        return seen[user_id]
    locked = AccountLock.objects.using("default").filter(user_id=user_id, lifted_at=None).exists()
    if seen is not None:
        seen[user_id] = locked
    return locked


def lock_seen(user_id: int, locked: bool) -> None:
    seen = _locks_seen.get()
    if seen is not None:
        seen[user_id] = locked


def account_lock(
    actor: Actor,
    *,
    reason: str,
    kind: str,
    severity: str,
    patient_id: uuid.UUID | None = None,
    by: Actor | None = None,
) -> None:
    """Lock the actor's account (once), tell the security officer, record it (as done by `by`,
    an officer, when one decided it; by the policy itself otherwise)."""
    if actor.user_id is None or is_locked(actor.user_id):
        return
    AccountLock.objects.create(user_id=actor.user_id, reason=reason[:200], locked_at=timezone.now())
    lock_seen(actor.user_id, True)
    event_record((by or actor).for_purpose(Purpose.SECURITY), Action.LOCK, resource_type="User",
                 resource_id=str(actor.user_id), patient_id=patient_id,
                 detail={"reason": kind})  # fmt: skip
    message = f"Compte {actor.username} ({role_label(actor.role)}) verrouillé : {reason}"
    alert_raise(severity=severity, kind=kind, audience=Role.SECURITY_OFFICER,
                user_id=actor.user_id, patient_id=patient_id, message=message)  # fmt: skip


def role_label(role: str) -> str:
    return str(dict(Role.choices).get(role, role))


# --- canaries -------------------------------------------------------------------------------------


def canary_tag(patient_id: uuid.UUID, key_id: int | None = None) -> bytes:
    """The keyed tag naming a canary (under the primary index key unless `key_id` says)."""
    return get_vault().indexer.tag("canary", patient_id.bytes, key_id)


def is_canary(patient_id: uuid.UUID) -> bool:
    # every enabled index key: during a rotation a mark may not be re-tagged yet
    indexer = get_vault().indexer
    tags = [canary_tag(patient_id, k) for k in indexer.key_ids]
    return CanaryMark.objects.filter(tag__in=tags).exists()


# --- budgets --------------------------------------------------------------------------------------


def stepped_up(user_id: int) -> bool:
    since = timezone.now() - dt.timedelta(minutes=settings.REMPART_STEP_UP_MINUTES)
    return StepUp.objects.filter(user_id=user_id, at__gte=since).exists()


def charge(actor: Actor, items: Sequence[uuid.UUID]) -> None:
    """Count `items` against the actor's budget: past it, ask for the second factor again;
    past the hard limit, lock the account."""
    if actor.role == SYSTEM_ROLE or actor.user_id is None:
        return
    usage = budgets.touch(actor.user_id, items)
    hour, day, week = budgets.limits(actor.role)
    factor = settings.REMPART_BUDGET_HARD_FACTOR
    if usage.hour > hour * factor or usage.day > day * factor or usage.week > week * factor:
        reason = (f"budget de lecture dépassé ({usage.hour} cette heure, {usage.day} "
                  f"aujourd'hui, {usage.week} en 7 jours)")  # fmt: skip
        account_lock(actor, reason=reason, kind=AlertKind.BUDGET, severity=Severity.CRITICAL)
        raise AccountLocked()
    _peer_check(actor, usage.day)
    if (usage.hour > hour or usage.day > day or usage.week > week) and not stepped_up(
        actor.user_id
    ):
        raise StepUpRequired()


PEER_STEP = 20  # the comparison runs when an account's day count crosses a multiple of this


def _peer_check(actor: Actor, day_count: int) -> None:
    """Far more distinct patients today than the others of the role: alert the security
    officer once a day. Runs every PEER_STEP patients, not on every page."""
    if day_count < settings.REMPART_PEER_FLOOR or day_count % PEER_STEP != 0:
        return
    assert actor.user_id is not None  # noqa: S101  # charge() returns early for anonymous
    from rempart.directory.models import StaffMember

    others = list(
        StaffMember.objects.filter(role=actor.role, user__is_active=True)
        .exclude(user_id=actor.user_id)
        .values_list("user_id", flat=True)[:2000]
    )
    # The others at work today; with fewer than 3 of them (a night, a small site) the floor
    # alone decides: a lone account reading that many at night is what a scraper looks like.
    counts = sorted(n for n in budgets.peers_today(others) if n > 0)
    median = counts[len(counts) // 2] if len(counts) >= 3 else 0
    if day_count <= settings.REMPART_PEER_FACTOR * max(median, 1):
        return
    since = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    alert_once(since=since, severity=Severity.WARNING, kind=AlertKind.PEERS,
               audience=Role.SECURITY_OFFICER, user_id=actor.user_id,
               message=f"{actor.username} ({role_label(actor.role)}) a consulté {day_count} "
                       f"dossiers aujourd'hui ; médiane des {len(counts)} autres comptes de "
                       f"la fonction actifs aujourd'hui : {median}.")  # fmt: skip


# --- the care relationship ------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """What an opening grants: the actor (with the purpose of the access) and whether clinical
    content is open (prescriptions, stays of other establishments)."""

    actor: Actor
    clinical: bool


DESK, CLINICAL_LEVEL = 1, 2


def _care_stays(actor: Actor, patient_id: uuid.UUID) -> Q | None:
    """The filter of the patient's stays that put them in the actor's care (None: none can)."""
    if actor.role in CLINICAL and not actor.services:
        return None  # fail closed: a clinician attached to no service is attached to nothing
    if not actor.establishments:
        return None
    now = timezone.now()
    upcoming = now + dt.timedelta(days=settings.REMPART_CARE_UPCOMING_DAYS)
    recent = now - dt.timedelta(days=settings.REMPART_CARE_RECENT_DAYS)
    scope = Q(patient_id=patient_id, establishment_id__in=actor.establishments,
              cancelled_at__isnull=True)  # fmt: skip
    if actor.role in CLINICAL:
        scope &= Q(service_id__in=actor.services)
    current = Q(admitted_at__isnull=False, discharged_at__isnull=True)
    planned = Q(admitted_at__isnull=True, planned_admission__range=(recent, upcoming))
    return scope & (current | planned | Q(discharged_at__gte=recent))


def care_level(actor: Actor, patient: Patient) -> int:
    """0 outside care, DESK, or CLINICAL_LEVEL (see the module's docstring); one query."""
    if actor.practitioner_id is not None and patient.gp_id == actor.practitioner_id:
        return CLINICAL_LEVEL
    stays = _care_stays(actor, patient.pk)
    if stays is None:
        return 0
    admitted = list(Stay.objects.filter(stays).values_list("admitted_at", flat=True)[:50])
    if not admitted:
        return 0
    if actor.role in CLINICAL | {API_CLIENT} and any(at is not None for at in admitted):
        return CLINICAL_LEVEL
    return DESK


def _break_glass(actor: Actor, patient_id: uuid.UUID) -> BreakGlass | None:
    if actor.user_id is None:
        return None
    running = BreakGlass.objects.filter(
        user_id=actor.user_id, patient_id=patient_id, expires_at__gt=timezone.now()
    )
    return running.order_by("-expires_at").first()


def _parse(patient_id: uuid.UUID | str) -> uuid.UUID | None:
    if isinstance(patient_id, uuid.UUID):
        return patient_id
    try:
        return uuid.UUID(str(patient_id))
    except ValueError:
        return None


def authorise_open(
    actor: Actor, patient_id: uuid.UUID | str, patient: Patient | None, *, clinical: bool = False
) -> Access:
    """May the actor open this patient's record (its clinical content, if `clinical`)? Returns
    the access granted, with the purpose it is made for (care, break-the-glass); raises
    AccessDenied, StepUpRequired or AccountLocked. `patient` is None when no such patient
    exists: refused the same way as one outside care."""
    if actor.role == SYSTEM_ROLE:
        if patient is None:
            raise AccessDenied()
        return Access(actor, clinical=True)
    if actor.user_id is None or actor.role not in READERS:
        raise AccessDenied()
    if is_locked(actor.user_id):
        raise AccountLocked()
    parsed = _parse(patient_id)
    if patient is not None and is_canary(patient.pk):
        account_lock(actor, reason="ouverture d'un dossier leurre", kind=AlertKind.CANARY,
                     severity=Severity.CRITICAL, patient_id=patient.pk)  # fmt: skip
        raise AccountLocked()
    charge(actor, [parsed or new_id()])  # forged ids are charged too: probing costs budget
    if patient is None:
        raise AccessDenied()
    level = care_level(actor, patient)
    if level == CLINICAL_LEVEL or (level == DESK and not clinical):
        return Access(actor, clinical=level == CLINICAL_LEVEL)
    if _break_glass(actor, patient.pk) is not None:
        return Access(actor.for_purpose(Purpose.BREAK_GLASS), clinical=True)
    raise AccessDenied()


# --- coming into care ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Opening:
    """A care relationship a stay opens: `new_here` when the patient is known elsewhere in the
    group but never had a stay in this establishment (the attacker's pattern; returning
    patients and new registrations are the desk's daily work)."""

    new_here: bool


def authorise_care_opening(
    actor: Actor, patient: Patient, establishment_id: uuid.UUID
) -> Opening | None:
    """A stay planned or admitted for `patient`: a canary locks the account; a patient outside
    the actor's care is charged to the budget like a chart, and the Opening is returned for the
    caller to record with the stay (None: already in care, or the console)."""
    if actor.role == SYSTEM_ROLE:
        return None
    authorise_role(actor, READERS)
    if is_canary(patient.pk):
        account_lock(actor, reason="séjour prévu pour un dossier leurre", kind=AlertKind.CANARY,
                     severity=Severity.CRITICAL, patient_id=patient.pk)  # fmt: skip
        raise AccountLocked()
    if care_level(actor, patient):
        return None
    charge(actor, [patient.pk])
    from rempart.patients.models import PatientIdentifier

    stays = Stay.objects.filter(patient_id=patient.pk)
    here = stays.filter(establishment_id=establishment_id).exists()
    elsewhere = (
        stays.exclude(establishment_id=establishment_id).exists()
        or PatientIdentifier.objects.filter(patient_id=patient.pk)
        .exclude(establishment_id=establishment_id)
        .exists()
    )
    return Opening(new_here=elsewhere and not here)


def care_opened(actor: Actor, opening: Opening, *, patient_id: uuid.UUID, stay_id: uuid.UUID,
                establishment_id: uuid.UUID) -> None:  # fmt: skip
    """Record the care relationship a stay opened (in the stay's transaction); past a few
    patients new to the establishment in a short time, alert the security officer: a desk
    brings returning patients and new ones into care, a scraper brings the group's."""
    assert actor.user_id is not None  # noqa: S101  # authorise_care_opening refuses anonymous
    now = timezone.now()
    CareOpening.objects.create(user_id=actor.user_id, patient_id=patient_id, stay_id=stay_id,
                               establishment_id=establishment_id, at=now,
                               new_here=opening.new_here)  # fmt: skip
    if not opening.new_here:
        return
    since = now - dt.timedelta(hours=settings.REMPART_CARE_NEW_HOURS)
    count = CareOpening.objects.filter(user_id=actor.user_id, new_here=True, at__gte=since).count()
    if count < settings.REMPART_CARE_NEW_ALERT:
        return
    alert_once(since=since, severity=Severity.CRITICAL, kind=AlertKind.CARE,
               audience=Role.SECURITY_OFFICER, user_id=actor.user_id,
               message=f"{actor.username} ({role_label(actor.role)}) a pris en charge {count} "
                       f"patients connus ailleurs dans le groupe et nouveaux dans son "
                       f"établissement en moins de {settings.REMPART_CARE_NEW_HOURS} h : "
                       "vérifiez qu'il ne s'agit pas d'un compte volé.")  # fmt: skip


def authorise_role(actor: Actor, roles: frozenset[str] | set[str]) -> None:
    """The actor's role must be one of `roles` (the console's system actor always is), and the
    account not locked."""
    if actor.role == SYSTEM_ROLE:
        return
    if actor.user_id is None or actor.role not in roles:
        raise AccessDenied()
    if is_locked(actor.user_id):
        raise AccountLocked()


def authorise_establishment(actor: Actor, establishment_id: uuid.UUID) -> None:
    if actor.role != SYSTEM_ROLE and establishment_id not in actor.establishments:
        raise AccessDenied()


def authorise_search(actor: Actor) -> None:
    """Searches are for the roles that admit and treat patients, accounts not locked."""
    authorise_role(actor, READERS)


def charge_search(actor: Actor, found: Sequence[uuid.UUID]) -> None:
    """A search costs one unit, plus one per patient it shows (canaries in results do not lock:
    only opening one does)."""
    charge(actor, [new_id(), *found])


def refusal_recorded(
    actor: Actor,
    action: str,
    exc: Exception,
    *,
    resource_type: str,
    resource_id: str = "",
    patient_id: uuid.UUID | None = None,
) -> None:
    """The audit event of a refused access (the reason is internal; the user sees less)."""
    reason = {AccessDenied: "outside_care", StepUpRequired: "step_up",
              AccountLocked: "locked"}.get(type(exc), "refused")  # fmt: skip
    event_record(actor, action, resource_type=resource_type, resource_id=resource_id[:64],
                 patient_id=patient_id, outcome=Outcome.DENIED,
                 detail={"refused": reason})  # fmt: skip
