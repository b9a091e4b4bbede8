"""The breach file ("dossier de violation") and what the DPO sends from it: the 72-hour clock,
the facts and measures (sealed), the analyses attached, the decisions and who took them, the
drafts of the CNIL notification, the ARS and CERT Santé report, the letters, e-mails and public
communication (rempart.breach.drafts). Every step is journaled in the file and audited."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from rempart.access import policy
from rempart.audit.context import SYSTEM_ROLE, Actor
from rempart.audit.models import Action
from rempart.audit.services import event_record
from rempart.breach.models import (
    BreachAnalysis,
    BreachDraft,
    BreachFile,
    BreachStatus,
    BreachStep,
    DraftKind,
    LeakedPatient,
    StepKind,
)  # fmt: skip
from rempart.directory.models import Role

HANDLERS = frozenset({Role.DPO, Role.SECURITY_OFFICER, SYSTEM_ROLE})
NOTES = ("title", "facts", "consequences", "measures_taken", "measures_proposed", "dpo_contact")
MARKS = {"cnil": ("cnil_notified_at", StepKind.CNIL), "ars": ("ars_reported_at", StepKind.ARS),
         "patients": ("patients_informed_at", StepKind.PATIENTS),
         "closed": ("closed_at", StepKind.CLOSED)}  # fmt: skip


class BreachRefused(Exception):
    """A step the file cannot take (the message says why, never a patient's value)."""


def _step(actor: Actor, breach: BreachFile, kind: str, summary: str,
          wording: str | None = None) -> BreachStep:  # fmt: skip
    step = BreachStep(breach=breach, username=actor.username, kind=kind, summary=summary[:300])
    if wording:
        step.wording = wording
    step.save()
    event_record(actor, Action.BREACH, resource_type="BreachFile", resource_id=breach.pk,
                 detail={"step": kind, "summary": summary[:300]})  # fmt: skip
    return step


def _file(actor: Actor, breach_id: uuid.UUID, *, for_update: bool = True) -> BreachFile:
    policy.authorise_role(actor, HANDLERS)
    rows = BreachFile.objects.select_for_update() if for_update else BreachFile.objects
    breach = rows.filter(pk=breach_id).first()
    if breach is None:
        raise BreachRefused("dossier introuvable")
    return breach


def breach_open(*, actor: Actor, aware_at: dt.datetime, title: str = "", facts: str = "",
                analysis_ids: tuple[uuid.UUID, ...] = ()) -> BreachFile:  # fmt: skip
    """Open a file. `aware_at`: when the group became aware of the breach (not in the future:
    the clock would start late)."""
    policy.authorise_role(actor, HANDLERS)
    if aware_at > timezone.now() + dt.timedelta(minutes=5):
        raise BreachRefused("la date de prise de connaissance est dans le futur")
    with transaction.atomic():
        breach = BreachFile(aware_at=aware_at, opened_by=actor.username)
        breach.notes = {
            "title": title.strip()
            or f"Violation constatée le {timezone.localtime(aware_at):%d/%m/%Y à %H:%M}",
            "facts": facts,
        }
        breach.save()
        _step(
            actor,
            breach,
            StepKind.OPENED,
            f"prise de connaissance le {timezone.localtime(aware_at):%d/%m/%Y %H:%M}, "
            f"notification due avant le {timezone.localtime(breach.deadline):%d/%m/%Y %H:%M}",
        )
        for analysis_id in analysis_ids:
            _attach(actor, breach, analysis_id)
    return breach


def breach_notes(*, actor: Actor, breach_id: uuid.UUID, **notes: str) -> BreachFile:
    """Complete the facts and measures (Art. 33(4): in phases, each one journaled)."""
    unknown = set(notes) - set(NOTES)
    if unknown:
        raise BreachRefused("rubrique inconnue")
    with transaction.atomic():
        breach = _file(actor, breach_id)
        current = dict(breach.notes or {})
        changed = sorted(k for k, v in notes.items() if (current.get(k) or "") != v)
        if not changed:
            return breach
        current.update(notes)
        breach.notes = current
        breach.save(update_fields=["notes"])
        _step(actor, breach, StepKind.FACTS, "rubriques complétées : " + ", ".join(changed))
    return breach


def _attach(actor: Actor, breach: BreachFile, analysis_id: uuid.UUID) -> None:
    analysis = BreachAnalysis.objects.filter(pk=analysis_id).first()
    if analysis is None:
        raise BreachRefused("analyse introuvable")
    if breach.analyses.filter(pk=analysis.pk).exists():
        return
    breach.analyses.add(analysis)
    matches = analysis.report.get("matches", {})
    _step(actor, breach, StepKind.ANALYSIS,
          f"analyse {analysis.pk} de {analysis.rows} lignes ({matches.get('patients', 0)} "
          f"patients du groupe)")  # fmt: skip


def breach_attach(*, actor: Actor, breach_id: uuid.UUID, analysis_id: uuid.UUID) -> BreachFile:
    with transaction.atomic():
        breach = _file(actor, breach_id)
        _attach(actor, breach, analysis_id)
    return breach


def breach_decide(*, actor: Actor, breach_id: uuid.UUID, wording: str) -> BreachStep:
    """Record a decision (what was decided, sealed) and who took it."""
    if not wording.strip():
        raise BreachRefused("la décision est vide")
    with transaction.atomic():
        breach = _file(actor, breach_id)
        return _step(actor, breach, StepKind.DECISION, f"décision prise par {actor.username}",
                     wording=wording.strip())  # fmt: skip


def breach_mark(*, actor: Actor, breach_id: uuid.UUID, what: str,
                when: dt.datetime | None = None) -> BreachFile:  # fmt: skip
    """Record a notification sent (CNIL, ARS), the people informed, or the file closed."""
    if what not in MARKS:
        raise BreachRefused("étape inconnue")
    column, kind = MARKS[what]
    when = when or timezone.now()
    with transaction.atomic():
        breach = _file(actor, breach_id)
        if breach.status == BreachStatus.CLOSED:
            raise BreachRefused("le dossier est clos")
        setattr(breach, column, when)
        if what == "cnil":
            breach.status = BreachStatus.NOTIFIED
        if what == "closed":
            breach.status = BreachStatus.CLOSED
        breach.save()
        late = ""
        if what == "closed":
            from rempart.breach.letters import letter_files

            removed = letter_files(breach.pk)
            for path in removed:  # names and addresses: not kept past the file
                path.unlink()
            late = f" (fichiers de lettres détruits : {len(removed)})" if removed else ""
        if what == "cnil" and when > breach.deadline:
            late = f" (hors délai de {_hours(when - breach.deadline)} : motifs à joindre)"
        _step(actor, breach, kind, f"{kind.label} le {timezone.localtime(when):%d/%m/%Y %H:%M}"
                                   + late)  # fmt: skip
    return breach


def _hours(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d}"


def clock(breach: BreachFile, now: dt.datetime | None = None) -> dict[str, Any]:
    """The 72-hour clock: time left (or overdue), or when the CNIL was notified."""
    now = now or timezone.now()
    if breach.cnil_notified_at:
        return {
            "state": "notified",
            "text": "CNIL notifiée le "
            f"{timezone.localtime(breach.cnil_notified_at):%d/%m/%Y à %H:%M}",
        }
    left = breach.deadline - now
    if left.total_seconds() >= 0:
        state = "urgent" if left < dt.timedelta(hours=12) else "running"
        return {
            "state": state,
            "text": f"notification CNIL due dans {_hours(left)}",
            "deadline": breach.deadline,
        }
    return {
        "state": "late",
        "text": f"notification CNIL en retard de {_hours(-left)}",
        "deadline": breach.deadline,
    }


def leaked_categories(analysis_ids: list[uuid.UUID]) -> dict[bytes, set[str]]:
    """Each leaked patient of these analyses (by their id's 16 bytes) and the categories of
    their data the samples showed."""
    shown: dict[bytes, set[str]] = {}
    for patient_id, categories in LeakedPatient.objects.filter(
        analysis_id__in=analysis_ids
    ).values_list("patient_id", "categories").iterator(chunk_size=20_000):  # fmt: skip
        shown.setdefault(patient_id.bytes, set()).update(categories)
    return shown


def open_files() -> list[BreachFile]:
    return list(BreachFile.objects.exclude(status=BreachStatus.CLOSED).order_by("aware_at"))


# --- what the analyses say, for the drafts -------------------------------------------------------


@dataclass
class Figures:
    """The file's leak in numbers: people, records, categories, places, sources (no values)."""

    people: int = 0
    records: int = 0
    rows: int = 0
    exact: int = 0
    partial: int = 0
    per_category: dict[str, int] = field(default_factory=dict)  # people per data category
    establishments: list[tuple[str, str, int]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    newest: str | None = None
    samples: list[str] = field(default_factory=list)
    plaintext: bool = False  # the sample showed the values in clear (keys or values taken)


def figures(breach: BreachFile) -> Figures:
    from rempart.breach.report import source_sentence

    out = Figures()
    analyses = list(breach.analyses.order_by("created_at"))
    places: Counter[tuple[str, str]] = Counter()
    for analysis in analyses:
        report = analysis.report
        matches = report.get("matches", {})
        out.rows += analysis.rows
        out.exact += matches.get("exact", 0)
        out.partial += matches.get("partial", 0)
        for place in report.get("establishments", []):
            places[(place["name"], place["finess"])] += place["patients"]
        if "source" in report:
            out.sources.append(source_sentence(report))
        newest = report.get("freshness", {}).get("newest_record")
        if newest and (out.newest is None or newest > out.newest):
            out.newest = newest
        out.samples.append(f"{analysis.file_name} ({analysis.rows} lignes, analysé le "
                           f"{timezone.localtime(analysis.created_at):%d/%m/%Y})")  # fmt: skip
    out.records = out.exact + out.partial
    out.plaintext = out.records > 0
    out.establishments = [(name, finess, n) for (name, finess), n in places.most_common()]
    ids = [a.pk for a in analyses]
    if not ids:
        return out
    if connection.vendor == "postgresql":
        table = LeakedPatient._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(DISTINCT patient_id) FROM {table} "  # noqa: S608
                           "WHERE analysis_id = ANY(%s)", [ids])  # fmt: skip
            out.people = cursor.fetchone()[0]
            cursor.execute(
                f"SELECT c, count(DISTINCT patient_id) FROM {table}, "  # noqa: S608
                "jsonb_array_elements_text(categories) AS c WHERE analysis_id = ANY(%s) "
                "GROUP BY c", [ids],
            )  # fmt: skip
            out.per_category = dict(cursor.fetchall())
    else:
        seen: dict[uuid.UUID, set[str]] = {}
        for patient_id, shown in LeakedPatient.objects.filter(analysis_id__in=ids).values_list(
            "patient_id", "categories"
        ):  # fmt: skip
            seen.setdefault(patient_id, set()).update(shown)
        out.people = len(seen)
        out.per_category = dict(Counter(c for shown in seen.values() for c in shown))
    return out


def draft_generate(*, actor: Actor, breach_id: uuid.UUID, kind: str) -> BreachDraft:
    """(Re)generate a draft from the file and its analyses; an edited draft is replaced only
    when asked again (the previous text stays in no other place: the page warns)."""
    from rempart.breach import drafts

    if kind not in DraftKind.values:
        raise BreachRefused("brouillon inconnu")
    with transaction.atomic():
        breach = _file(actor, breach_id)
        text = drafts.render(kind, breach, figures(breach))
        draft, _created = BreachDraft.objects.get_or_create(
            breach=breach, kind=kind, defaults={"generated_at": timezone.now(), "text": text}
        )
        if not _created:
            draft.text = text
            draft.generated_at = timezone.now()
            draft.edited_at, draft.edited_by = None, ""
            draft.save()
        _step(actor, breach, StepKind.DRAFT, f"{DraftKind(kind).label} : brouillon généré")
    return draft


def draft_edit(*, actor: Actor, breach_id: uuid.UUID, kind: str, text: str) -> BreachDraft:
    with transaction.atomic():
        breach = _file(actor, breach_id)
        draft = BreachDraft.objects.filter(breach=breach, kind=kind).first()
        if draft is None:
            raise BreachRefused("brouillon à générer d'abord")
        if kind in (DraftKind.LETTER, DraftKind.EMAIL):
            from rempart.breach.drafts import PLACEHOLDERS

            missing = [p for p in PLACEHOLDERS if p not in text]
            if missing:
                raise BreachRefused(
                    "la lettre doit garder les repères " + ", ".join(missing)
                    + " (ce que chaque patient a perdu, et les conseils)"
                )  # fmt: skip
        draft.text = text
        draft.edited_at, draft.edited_by = timezone.now(), actor.username
        draft.save()
        _step(actor, breach, StepKind.DRAFT, f"{DraftKind(kind).label} : brouillon modifié")
    return draft
