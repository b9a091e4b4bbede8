"""The audit trail: every patient path writes its event, the trail fails closed, and every way of
tampering with it (edit, delete, swap, cut, forge) is detected by `verify`."""

from __future__ import annotations

import datetime as dt
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import ProgrammingError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from rempart.audit import sinks
from rempart.audit.context import SYSTEM_ROLE, Actor
from rempart.audit.fhir import as_audit_event
from rempart.audit.models import Action, Checkpoint, Event, EventPatient, Link, Outcome
from rempart.audit.services import AuditUnavailable, canonical, event_record, seal_all
from rempart.audit.verify import verify_trail
from rempart.care.models import Prescription, Stay
from rempart.directory.models import Practitioner, Service
from rempart.patients.models import Patient
from rempart.records.selectors import audit as audit_selectors
from rempart.records.selectors import care as care_selectors
from rempart.records.selectors import patients as patient_selectors
from rempart.records.services import care as care_services
from rempart.records.services import patients as patient_services
from rempart.records.services import vigilance
from rempart.vault import crypto

# The console's system actor (the care relationship is tested in test_access.py), with an
# address and a request id as a web request would carry.
ACTOR = Actor(username="dr.test", role=SYSTEM_ROLE, ip="10.1.2.3", request_id="req-12345678")


@pytest.fixture
def trail(settings: Any, tmp_path: Path) -> Path:
    """A checkpoint file of this test's own (the database side rolls back after each test)."""
    settings.REMPART_AUDIT_CHECKPOINT_FILE = tmp_path / "audit" / "checkpoints.jsonl"
    return settings.REMPART_AUDIT_CHECKPOINT_FILE  # type: ignore[no-any-return]


def _mark() -> int:
    return Event.objects.aggregate(top=Max("id"))["top"] or 0


def _since(mark: int) -> list[Event]:
    return list(Event.objects.filter(id__gt=mark).order_by("id"))


# --- every path writes its event ----------------------------------------------------------------


def _line() -> care_services.LineData:
    return care_services.LineData(drug="paracetamol-1g-cp", dose="1 comprimé", route="oral",
                                  frequency="3 fois par jour", duration_days=5)  # fmt: skip


def _new_patient_data() -> Any:
    from rempart.patients.validation import PatientData

    return PatientData(birth_name="AUDITEUR", given_names="Zoé", sex="F",
                       birth_date=dt.date(1990, 5, 17))  # fmt: skip


def _prescription(p: Patient) -> Prescription:
    prescriber = Practitioner.objects.filter(internal=True).first()
    return care_services.prescription_create(actor=ACTOR, patient=p, prescriber=prescriber,
                                             lines=[_line()])  # fmt: skip


def _stay(p: Patient, admitted: bool = True) -> Stay:
    start = timezone.now() - dt.timedelta(days=1)
    return care_services.stay_create(actor=ACTOR, patient=p, service=Service.objects.first(),
                                     kind="full", planned_admission=start,
                                     admitted_at=start if admitted else None)  # fmt: skip


# name -> (call, expected action, does the event name the patient?)
Recipe = Callable[[Patient, Any], Any]
RECIPES: dict[str, tuple[Recipe, str, bool]] = {
    "patient_get": (lambda p, g: patient_selectors.patient_get(actor=ACTOR, patient_id=p.pk),
                    Action.READ, True),
    "patients_find_by_name_and_birth_date": (
        lambda p, g: patient_selectors.patients_find_by_name_and_birth_date(
            actor=ACTOR, name=p.birth_name, birth_date=p.birth_date), Action.SEARCH, True),
    "patients_find_by_nir": (
        lambda p, g: patient_selectors.patients_find_by_nir(actor=ACTOR, nir=p.nir),
        Action.SEARCH, True),
    "patients_find_by_email": (
        lambda p, g: patient_selectors.patients_find_by_email(actor=ACTOR, email=p.email),
        Action.SEARCH, True),
    "patients_find_by_phone": (
        lambda p, g: patient_selectors.patients_find_by_phone(actor=ACTOR, phone=p.phone_mobile),
        Action.SEARCH, True),
    "patients_find_by_phonetic_name": (
        lambda p, g: patient_selectors.patients_find_by_phonetic_name(
            actor=ACTOR, name=p.birth_name, birth_date=p.birth_date), Action.SEARCH, True),
    "patient_id_for_ipp": (
        lambda p, g: patient_selectors.patient_id_for_ipp(
            actor=ACTOR, ipp=p.identifiers.first().ipp,
            finess=p.identifiers.first().establishment.finess), Action.SEARCH, True),
    "stays_for_patient": (lambda p, g: care_selectors.stays_for_patient(actor=ACTOR, patient=p),
                          Action.READ, True),
    "patient_chart": (lambda p, g: care_selectors.patient_chart(actor=ACTOR, patient_id=p.pk),
                      Action.READ, True),
    "prescription_get": (
        lambda p, g: care_selectors.prescription_get(actor=ACTOR,
                                                     prescription_id=_prescription(p).pk),
        Action.READ, True),
    "ward_stays": (lambda p, g: care_selectors.ward_stays(actor=ACTOR), Action.READ, False),
    "prescriptions_for_patient": (
        lambda p, g: care_selectors.prescriptions_for_patient(actor=ACTOR, patient=p),
        Action.READ, True),
    "patient_access_report": (
        lambda p, g: audit_selectors.patient_access_report(actor=ACTOR, patient_id=p.pk),
        Action.REPORT, True),
    "patient_create": (
        lambda p, g: patient_services.patient_create(actor=ACTOR, data=_new_patient_data()),
        Action.CREATE, True),
    "patient_update": (
        lambda p, g: patient_services.patient_update(
            actor=ACTOR, patient=p,
            data=__import__("dataclasses").replace(_data_of(p), city="NOUVELLE VILLE")),
        Action.UPDATE, True),
    "ipp_allocate": (
        lambda p, g: patient_services.ipp_allocate(
            actor=ACTOR, patient=p, establishment=Service.objects.last().establishment),
        Action.CREATE, True),
    "stay_create": (lambda p, g: _stay(p), Action.CREATE, True),
    "stay_admit": (lambda p, g: care_services.stay_admit(actor=ACTOR, stay=_stay(p, False)),
                   Action.UPDATE, True),
    "stay_discharge": (lambda p, g: care_services.stay_discharge(actor=ACTOR, stay=_stay(p)),
                       Action.UPDATE, True),
    "stay_cancel": (lambda p, g: care_services.stay_cancel(actor=ACTOR, stay=_stay(p, False)),
                    Action.UPDATE, True),
    "stays_never_realised": (lambda p, g: care_selectors.stays_never_realised(actor=ACTOR),
                             Action.READ, False),
    "stay_transfer": (
        lambda p, g: care_services.stay_transfer(
            actor=ACTOR, stay=(stay := _stay(p)),
            service=Service.objects.filter(establishment_id=stay.establishment_id)
            .exclude(pk=stay.service_id).first()),
        Action.UPDATE, True),
    "prescription_create": (lambda p, g: _prescription(p), Action.CREATE, True),
    "prescription_line_add": (
        lambda p, g: care_services.prescription_line_add(
            actor=ACTOR, prescription=_prescription(p), line=_line()), Action.CREATE, True),
    "prescription_sign": (
        lambda p, g: care_services.prescription_sign(actor=ACTOR, prescription=_prescription(p)),
        Action.UPDATE, True),
    "duplicates_find": (lambda p, g: vigilance.duplicates_find(actor=ACTOR), Action.SEARCH, False),
    "duplicates_find_among": (
        lambda p, g: vigilance.duplicates_find_among(actor=ACTOR, suspects=[[[p.pk]], []]),
        Action.SEARCH, False),
}  # fmt: skip
# Public helpers that record nothing themselves, with why.
EXEMPT = {
    "patient_open": "checks access and records refusals; its callers record the access",
    "drugs_search": "the public drug catalogue: no patient data",
}
MODULES: list[ModuleType] = [patient_selectors, care_selectors, audit_selectors,
                             patient_services, care_services, vigilance]  # fmt: skip


def _data_of(p: Patient) -> Any:
    from rempart.patients.validation import PatientData

    fields = PatientData.__dataclass_fields__
    return PatientData(**{k: getattr(p, k) or "" for k in fields if k not in ("extra", "gp_id")},
                       gp_id=p.gp_id)  # fmt: skip


def _public_functions() -> list[str]:
    names = []
    for module in MODULES:
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ == module.__name__ and not name.startswith("_"):
                names.append(name)
    return sorted(names)


def test_every_patient_selector_and_service_is_walked_by_this_test():
    assert _public_functions() == sorted([*RECIPES, *EXEMPT]), "a new patient path needs a check"


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_patient_path_writes_its_event(group, name):
    patient = Patient.objects.exclude(bidx_nir=None).exclude(bidx_email=None)
    patient = patient.exclude(bidx_phone_mobile=None)
    patient = next(p for p in patient.order_by("id")[:50] if p.identifiers.exists())
    call, action, names_patient = RECIPES[name]
    mark = _mark()
    call(patient, group)
    events = [e for e in _since(mark) if e.action == action]
    assert events, f"{name} wrote no {action} event"
    event = events[-1]
    assert (event.username, event.role, event.ip, event.request_id) == (
        "dr.test", "system", "10.1.2.3", "req-12345678")  # fmt: skip
    if names_patient:
        touched = {e.patient_id for e in events} | {
            p for p in EventPatient.objects.filter(event_id__in=[e.id for e in events])
            .values_list("patient_id", flat=True)
        }  # fmt: skip
        assert touched - {None}, f"{name}'s event names no patient"
        if name not in ("patient_create",):
            assert patient.pk in touched


def test_a_search_records_the_kinds_of_criteria_and_the_ids_never_the_values(group):
    patient = Patient.objects.exclude(bidx_nir=None).first()
    mark = _mark()
    patient_selectors.patients_find_by_nir(actor=ACTOR, nir=patient.nir)
    (event,) = _since(mark)
    assert event.detail == {"criteria": ["nir"], "count": 1, "results": [str(patient.pk)]}
    stored = json.dumps(event.detail) + event.resource_id
    assert patient.nir not in stored and patient.birth_name not in canonical(event).decode()
    touched = EventPatient.objects.filter(event_id=event.id).values_list("patient_id", flat=True)
    assert list(touched) == [patient.pk]


def test_refused_and_missing_reads_are_recorded_too(group, settings):
    settings.REMPART_SEARCH_MAX_CANDIDATES = 0
    missing = "01a21f73-9c77-7914-90e5-319818efc82d"
    mark = _mark()
    with pytest.raises(patient_selectors.PatientNotFound):
        patient_selectors.patient_get(actor=ACTOR, patient_id=missing)
    with pytest.raises(patient_selectors.SearchTooBroad):
        patient_selectors.patients_find_by_phonetic_name(
            actor=ACTOR,
            name=group.patients[0].data.birth_name,
            birth_date=group.patients[0].data.birth_date,
        )
    outcomes = [(e.action, e.outcome) for e in _since(mark)]
    assert outcomes == [(Action.READ, Outcome.NOT_FOUND), (Action.SEARCH, Outcome.DENIED)]


def test_a_write_and_its_event_commit_or_fail_together(group):
    mark = _mark()
    patient = patient_services.patient_create(actor=ACTOR, data=_new_patient_data())
    (event,) = [e for e in _since(mark) if e.resource_type == "Patient"]
    assert (event.action, event.patient_id) == (Action.CREATE, patient.pk)
    assert "birth_name" in event.detail["fields"] and "AUDITEUR" not in json.dumps(event.detail)


# --- fail closed ----------------------------------------------------------------------------------


@pytest.fixture
def trail_unwritable(group):
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_event RENAME TO audit_event_away")
    yield
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_event_away RENAME TO audit_event")


def test_a_read_fails_closed_when_the_trail_cannot_be_written(group, trail_unwritable):
    patient_id = group.patients[0].id
    with pytest.raises(AuditUnavailable, match="aucune donnée n'est communiquée"):
        patient_selectors.patient_get(actor=ACTOR, patient_id=patient_id)
    with pytest.raises(AuditUnavailable):
        patient_selectors.patients_find_by_nir(actor=ACTOR, nir=group.patients[0].data.nir
                                               or "1 85 03 75 115 042 26")  # fmt: skip


def test_a_write_is_undone_when_its_event_cannot_be_written(group, trail_unwritable):
    before = Patient.objects.count()
    with pytest.raises(AuditUnavailable):
        patient_services.patient_create(actor=ACTOR, data=_new_patient_data())
    assert Patient.objects.count() == before


# --- append-only ----------------------------------------------------------------------------------


def test_the_trail_refuses_update_delete_and_truncate(group, trail):
    event_record(ACTOR, Action.SEARCH, resource_type="Patient", patients=[group.patients[0].id])
    seal_all()
    for table in ("audit_event", "audit_event_patient", "audit_link", "audit_checkpoint"):
        for statement in ("UPDATE {t} SET id = id", "DELETE FROM {t}", "TRUNCATE {t}"):
            sql = statement.format(t=table).replace("SET id = id", _noop(table))
            with (
                pytest.raises(ProgrammingError, match="append-only"),
                transaction.atomic(),
                connection.cursor() as cursor,
            ):
                cursor.execute(sql)
    assert Event.objects.filter(username="dr.test").count() == 1


def _noop(table: str) -> str:
    return "SET seq = seq" if table in ("audit_link", "audit_checkpoint") else "SET id = id"


# --- sealing and verification -----------------------------------------------------------------


def _busy_trail(group, n: int = 12) -> list[Event]:
    mark = _mark()
    for record in group.patients[:n]:
        patient_selectors.patient_get(actor=ACTOR, patient_id=record.id)
    return _since(mark)


def _attack(*statements: str, params: list[Any] | None = None) -> None:
    """What an attacker who owns the database does: bypass the triggers, then write."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        for statement in statements:
            cursor.execute(statement, params or [])
        cursor.execute("SET LOCAL session_replication_role = origin")


@pytest.fixture
def sealed(group, trail):
    events = _busy_trail(group, 6)
    seal_all()
    events += _busy_trail(group, 6)
    seal_all()
    assert Checkpoint.objects.count() == 2
    return events


def test_an_untouched_trail_verifies(sealed, trail):
    report = verify_trail()
    assert report.ok, report.problems
    assert report.links == len(sealed) and report.checkpoints == 2
    lines = [json.loads(line) for line in trail.read_text().splitlines()]
    assert [r["seq"] for r in lines] == [6, 12]


def test_events_recorded_after_the_last_seal_are_reported_unsealed_not_tampered(sealed, group):
    _busy_trail(group, 3)
    report = verify_trail()
    assert report.ok and report.unsealed == 3


def test_an_edited_field_is_detected_with_the_first_bad_event(sealed):
    target = sealed[4]
    _attack("UPDATE audit_event SET username = 'quelquun.dautre' WHERE id = %s", params=[target.id])
    report = verify_trail()
    assert not report.ok
    assert f"l'événement n° {target.id} (maillon 5" in report.problems[0]
    assert "modifié" in report.problems[0]


def test_a_deleted_event_is_detected(sealed):
    target = sealed[7]
    _attack("DELETE FROM audit_event WHERE id = %s", params=[target.id])
    report = verify_trail()
    assert not report.ok and f"n° {target.id} (maillon 8) a été supprimé" in report.problems[0]


def test_a_deleted_link_shows_as_a_gap(sealed):
    _attack("DELETE FROM audit_link WHERE seq = 3")
    report = verify_trail()
    assert not report.ok and "maillons 3 à 3 absents" in report.problems[0]


def test_two_swapped_events_are_detected(sealed):
    a, b = sealed[2], sealed[3]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE audit_link SET event_id = -1 WHERE event_id = %s", [a.id])
        cursor.execute("UPDATE audit_link SET event_id = %s WHERE event_id = %s", [a.id, b.id])
        cursor.execute("UPDATE audit_link SET event_id = %s WHERE event_id = -1", [b.id])
        cursor.execute("SET LOCAL session_replication_role = origin")
    report = verify_trail()
    assert not report.ok and f"l'événement n° {b.id} (maillon 3" in report.problems[0]


def test_a_cut_tail_is_detected_by_the_checkpoint_then_by_the_external_file(sealed):
    _attack("DELETE FROM audit_link WHERE seq > 9")
    _attack("DELETE FROM audit_event WHERE id IN (%s, %s, %s)", params=[e.id for e in sealed[9:]])
    report = verify_trail()
    assert not report.ok and "la fin du journal a été coupée" in report.problems[0]
    # The attacker also removes the checkpoint that vouched for the tail: the file remembers it.
    _attack("DELETE FROM audit_checkpoint WHERE seq = 12")
    report = verify_trail()
    assert not report.ok
    assert any("n° 12 de la copie externe" in p and "tronqué" in p for p in report.problems)


def test_a_checkpoint_forged_with_another_key_is_detected(sealed):
    from rempart.audit.services import checkpoint_payload

    # The attacker rewrites an event, recomputes the chain after it, and signs a new head with
    # a key of their own.
    target = sealed[10]
    _attack("UPDATE audit_event SET outcome = 'denied' WHERE id = %s", params=[target.id])
    digest = bytes(Link.objects.get(seq=10).digest)
    for link in Link.objects.filter(seq__gt=10).order_by("seq"):
        digest = crypto.chain_digest(digest, canonical(Event.objects.get(pk=link.event_id)))
        _attack("UPDATE audit_link SET digest = %s WHERE seq = %s", params=[digest, link.seq])
    cp = Checkpoint.objects.get(seq=12)
    cp.head = digest
    forger = crypto.CheckpointSigner(crypto.new_keyset(crypto.SIGNING_CATEGORY))
    _attack("UPDATE audit_checkpoint SET head = %s, signature = %s WHERE seq = 12",
            params=[digest, forger.sign(checkpoint_payload(cp))])  # fmt: skip
    report = verify_trail()
    assert not report.ok
    assert "n° 12" in report.problems[0] and "signature" in report.problems[0]
    assert any("diffère entre la base et la copie externe" in p for p in report.problems)


def test_an_event_slipped_in_below_the_watermark_is_detected(group, trail, settings):
    settings.REMPART_AUDIT_MAX_TRANSACTION = 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('audit_event', 'id'))")
        free_id = cursor.fetchone()[0]
    _busy_trail(group, 3)
    seal_all()
    assert Checkpoint.objects.order_by("-seq").first().watermark > free_id
    forged = Event(id=free_id, at=timezone.now() - dt.timedelta(days=3), username="intrus",
                   role="physician", action=Action.READ, resource_type="Patient",
                   purpose="care", outcome="success")  # fmt: skip
    forged.save(force_insert=True)
    report = verify_trail()
    assert not report.ok and f"n° {free_id} n'est pas dans la chaîne" in report.problems[0]


def test_a_backdated_event_sealed_later_is_detected(group, trail, settings):
    settings.REMPART_AUDIT_MAX_TRANSACTION = 60
    _busy_trail(group, 2)
    seal_all()
    forged = event_record(ACTOR, Action.READ, resource_type="Patient")
    _attack("UPDATE audit_event SET at = %s WHERE id = %s",
            params=[timezone.now() - dt.timedelta(days=2), forged])  # fmt: skip
    seal_all()
    report = verify_trail()
    assert not report.ok and "ajouté après coup" in report.problems[0]


def test_a_late_commit_is_still_sealed(group, trail, settings):
    """An event whose transaction commits after a seal (a long write) joins the chain later,
    even though its id is below events already sealed."""
    settings.REMPART_AUDIT_MAX_TRANSACTION = 300
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('audit_event', 'id'))")
        slow_id = cursor.fetchone()[0]  # taken by a transaction that has not committed yet
    _busy_trail(group, 2)
    seal_all()
    assert Checkpoint.objects.get().watermark < slow_id
    Event(
        id=slow_id,
        at=timezone.now(),
        username="lent",
        role="physician",
        action=Action.UPDATE,
        resource_type="Stay",
        purpose="care",
        outcome="success",
    ).save(force_insert=True)
    assert seal_all() == 1
    assert Link.objects.get(event_id=slow_id).seq == 3
    assert verify_trail().ok


def test_the_external_file_catches_up_after_a_crash_between_commit_and_append(sealed, trail):
    trail.write_text(trail.read_text().splitlines()[0] + "\n")  # the second append was lost
    assert sinks.sync_checkpoint_file() == 1
    assert verify_trail().ok


def test_verify_command_exits_non_zero_in_plain_words(sealed, capsys):
    call_command("audit", "verify")
    assert "Journal intègre" in capsys.readouterr().out
    _attack("UPDATE audit_event SET ip = '6.6.6.6' WHERE id = %s", params=[sealed[0].id])
    with pytest.raises(CommandError, match="altéré"):
        call_command("audit", "verify")
    assert "JOURNAL ALTÉRÉ — premier problème : l'événement n°" in capsys.readouterr().out


# --- patient report, FHIR, logins, keys ---------------------------------------------------------


def test_the_patient_access_report_says_who_when_why_where(group, tmp_path, capsys):
    patient = Patient.objects.get(pk=group.patients[0].id)
    patient_selectors.patient_get(actor=ACTOR, patient_id=patient.pk)
    patient_selectors.patients_find_by_name_and_birth_date(
        actor=ACTOR, name=patient.birth_name, birth_date=patient.birth_date
    )
    pdf = tmp_path / "releve.pdf"
    call_command("audit", "patient-report", str(patient.pk), "--pdf", str(pdf))
    out = capsys.readouterr().out
    assert "Qui a consulté ce dossier" in out
    assert "dr.test | Système (traitement automatique)" in out
    assert "Consultation (identité et coordonnées) | Soins | Réussi" in out
    assert "Recherche (identité et coordonnées)" in out
    assert pdf.read_bytes().startswith(b"%PDF-") and pdf.stat().st_mode & 0o077 == 0
    other = Patient.objects.get(pk=group.patients[1].id)
    report = audit_selectors.patient_access_report(actor=ACTOR, patient_id=other.pk)
    assert all(e.who != "dr.test" or e.action == "Relevé des accès" for e in report.entries)


def test_every_kind_of_event_renders_as_a_valid_fhir_audit_event(group):
    patient = Patient.objects.get(pk=group.patients[0].id)
    mark = _mark()
    for action in Action:
        event_record(ACTOR, action, resource_type="Patient", patient_id=patient.pk)
    patient_selectors.patients_find_by_name_and_birth_date(
        actor=ACTOR, name=patient.birth_name, birth_date=patient.birth_date
    )
    rendered = [as_audit_event(e) for e in _since(mark)]
    assert len(rendered) == len(Action) + 1
    read = rendered[0].model_dump(mode="json", exclude_none=True)
    assert read["action"] == "R" and read["subtype"][0]["code"] == "read"
    assert read["entity"][0]["what"]["reference"] == f"Patient/{patient.pk}"
    assert read["agent"][0]["network"] == {"address": "10.1.2.3", "type": "2"}
    query = rendered[-1].model_dump(mode="json", exclude_none=True)
    roles = [entity["role"]["code"] for entity in query["entity"]]
    assert roles[0] == "24" and set(roles[1:]) == {"1"}  # the query, then the patients found
    assert query["entity"][0]["description"] == "criteria: name,birth_date"
    assert patient.birth_name not in json.dumps(query)


def test_logins_failures_and_logouts_are_recorded(group, client, django_user_model):
    django_user_model.objects.create_user(username="infirmiere", password="Motdepasse-long-42")
    mark = _mark()
    client.post("/connexion/", {"username": "infirmiere", "password": "faux"})
    client.post("/connexion/", {"username": "Motdepasse-long-42", "password": "x"})
    client.post("/connexion/", {"username": "infirmiere", "password": "Motdepasse-long-42"})
    client.post("/deconnexion/")
    events = _since(mark)
    assert [e.action for e in events] == [Action.LOGIN_FAILED, Action.LOGIN_FAILED,
                                          Action.LOGIN, Action.LOGOUT]  # fmt: skip
    assert events[0].detail == {"account": "infirmiere"}
    assert events[1].detail == {"account": "inconnu"}  # a password in the wrong box stays out
    assert events[2].username == "infirmiere" and events[2].ip == "127.0.0.1"
    assert len(events[2].request_id) == 32


def test_key_operations_are_recorded(private_vault, group):
    mark = _mark()
    call_command("keys", "add", "contact")
    (event,) = _since(mark)
    assert (event.action, event.role, event.detail["operation"]) == (Action.KEY, "system", "add")


def test_checkpoints_reach_a_syslog_collector_in_rfc5424(sealed, settings, group):
    import socket

    from rempart.audit.services import seal_pending

    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(5)
    settings.REMPART_AUDIT_SYSLOG = f"127.0.0.1:{listener.getsockname()[1]}"
    settings.REMPART_AUDIT_SYSLOG_EVENTS = True
    sinks._syslog.cache_clear()
    try:
        _busy_trail(group, 1)
        seal_pending()
        messages = [listener.recv(65536).decode() for _ in range(2)]
    finally:
        sinks._syslog.cache_clear()
        listener.close()
    assert all(m.startswith("<14>1 ") and " rempart-audit " in m for m in messages)
    assert " event " in messages[0] and " checkpoint " in messages[1]
    assert '"seq":' in messages[1] or '"seq": ' in messages[1]
