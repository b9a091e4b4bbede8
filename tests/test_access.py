"""The access policy: care relationship, same answer for missing and forbidden, break-the-glass,
read budgets with step-up then lock, canaries, the sealed second factor."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from rempart.access import budgets, policy
from rempart.access import services as access
from rempart.access.canaries import canaries_plant
from rempart.access.models import Alert, BreakGlass, Review, SealedTOTPDevice
from rempart.audit.context import Actor
from rempart.audit.models import Event, Outcome, Purpose
from rempart.directory.models import Establishment, Practitioner, Role, Service
from rempart.lib.identifiers import luhn_complete, nir_check_digits
from rempart.patients.models import Patient
from rempart.records.actors import actor_for_user
from rempart.records.selectors import patients as sel
from rempart.records.selectors.care import stays_for_patient
from rempart.records.services import care
from rempart.records.services.directory import practitioner_create, staff_create

SYSTEM = Actor.system("tests")


@dataclass
class World:
    here: Establishment
    there: Establishment
    ward: Service
    other_ward: Service
    patient: Patient  # in care at `here`, in `ward`, since yesterday
    stranger: Patient  # no stay anywhere near
    users: dict[str, Any]

    def actor(self, name: str) -> Actor:
        return actor_for_user(self.users[name], ip="10.0.0.9", request_id="req-access-test")


def _user(username: str, role: Role, places: list[Establishment], services: list[Service],
          practitioner: Practitioner | None = None) -> Any:  # fmt: skip
    staff = staff_create(username=username, password="Un-mot-de-passe-long-7", role=role,
                         establishments=places, services=services,
                         practitioner=practitioner)  # fmt: skip
    staff.user.email = f"{username}@clinique.test"
    staff.user.save(update_fields=["email"])
    return staff.user


@pytest.fixture
def world(group) -> World:
    here, there = Establishment.objects.order_by("finess")[:2]
    ward, other_ward = here.services.order_by("code")[:2]
    patient, stranger = _new_patients(2, seed=1)
    yesterday = timezone.now() - dt.timedelta(days=1)
    care.stay_create(actor=SYSTEM, patient=patient, service=ward, kind="full",
                     planned_admission=yesterday, admitted_at=yesterday)  # fmt: skip
    doctor = practitioner_create(rpps=luhn_complete("1009999999"), family_name="SOIGNANT",
                                 given_name="Claire", specialty="Médecine interne", internal=True,
                                 establishments=[here])  # fmt: skip
    users = {
        "physician": _user("dr.care", Role.PHYSICIAN, [here], [ward], doctor),
        "other_ward": _user("dr.elsewhere", Role.PHYSICIAN, [here], [other_ward]),
        "secretary": _user("sec.here", Role.SECRETARY, [here], []),
        "outsider": _user("nurse.there", Role.NURSE, [there], list(there.services.all())),
        "tech": _user("admin.tech", Role.TECH_ADMIN, [here], []),
        "dpo": _user("dpo", Role.DPO, [], []),
        "security": _user("rssi", Role.SECURITY_OFFICER, [], []),
    }
    return World(here, there, ward, other_ward, patient, stranger, users)


def _last_event() -> Event:
    return Event.objects.order_by("-id").first()


def test_a_patient_in_care_is_opened_and_the_access_recorded_as_care(world):
    opened = sel.patient_get(actor=world.actor("physician"), patient_id=world.patient.pk)
    assert opened.pk == world.patient.pk
    event = _last_event()
    assert (event.outcome, event.purpose, event.username) == ("success", "care", "dr.care")
    assert [s.pk for s in stays_for_patient(actor=world.actor("secretary"), patient=opened)]


@pytest.mark.parametrize("who", ["outsider", "other_ward", "tech"])
def test_outside_care_looks_exactly_like_missing(world, who):
    actor = world.actor(who)
    with pytest.raises(sel.PatientNotFound) as forbidden:
        sel.patient_get(actor=actor, patient_id=world.patient.pk)
    with pytest.raises(sel.PatientNotFound) as missing:
        sel.patient_get(actor=actor, patient_id=uuid.uuid4())
    with pytest.raises(sel.PatientNotFound) as forged:
        sel.patient_get(actor=actor, patient_id="../../etc/passwd")
    assert str(forbidden.value) == str(missing.value) == str(forged.value)
    refused = Event.objects.filter(username=actor.username).order_by("id")
    assert [e.outcome for e in refused] == [Outcome.DENIED, Outcome.NOT_FOUND, Outcome.NOT_FOUND]


def test_the_technical_administrator_cannot_search_patients(world):
    with pytest.raises(policy.AccessDenied):
        sel.patients_find_by_nir(actor=world.actor("tech"), nir="1 85 03 75 115 042 26")
    assert _last_event().detail == {"refused": "outside_care"}


def test_the_medecin_traitant_sees_their_patient(world):
    doctor = world.users["physician"].staff.practitioner
    world.stranger.gp_id = doctor.pk
    world.stranger.save()
    assert sel.patient_get(actor=world.actor("physician"), patient_id=world.stranger.pk)


def test_an_old_stay_no_longer_opens_the_record(world, settings):
    settings.REMPART_CARE_RECENT_DAYS = 30
    long_ago = timezone.now() - dt.timedelta(days=90)
    care.stay_create(actor=SYSTEM, patient=world.stranger, service=world.ward, kind="full",
                     planned_admission=long_ago, admitted_at=long_ago,
                     discharged_at=long_ago + dt.timedelta(days=3))  # fmt: skip
    with pytest.raises(sel.PatientNotFound):
        sel.patient_get(actor=world.actor("physician"), patient_id=world.stranger.pk)


def test_break_the_glass_opens_one_patient_for_a_while_alerts_the_dpo_and_is_reviewed(world):
    nurse = world.actor("outsider")
    with pytest.raises(Exception, match="au moins 15"):
        access.break_glass_declare(actor=nurse, patient_id=world.patient.pk, reason="emergency",
                                   justification="urgent")  # fmt: skip
    declared = access.break_glass_declare(
        actor=nurse, patient_id=world.patient.pk, reason="emergency",
        justification="Arrêt cardiaque aux urgences, dossier introuvable",
    )  # fmt: skip
    opened = sel.patient_get(actor=nurse, patient_id=world.patient.pk)
    assert opened.pk == world.patient.pk and _last_event().purpose == Purpose.BREAK_GLASS
    with pytest.raises(sel.PatientNotFound):  # only that patient
        sel.patient_get(actor=nurse, patient_id=world.stranger.pk)
    alert = Alert.objects.get(kind="break_glass")
    assert alert.audience == "dpo" and "nurse.there" in alert.message
    assert mail.outbox and mail.outbox[-1].to == ["dpo@clinique.test"]
    assert "Arrêt" not in alert.message + mail.outbox[-1].body  # the free text stays sealed
    # Expired: refused again.
    BreakGlass.objects.filter(pk=declared.pk).update(expires_at=timezone.now())
    with pytest.raises(sel.PatientNotFound):
        sel.patient_get(actor=nurse, patient_id=world.patient.pk)
    with pytest.raises(policy.AccessDenied):
        access.break_glass_review(actor=nurse, declared=declared, verdict="justified", note="ok")
    access.break_glass_review(actor=world.actor("dpo"), declared=declared,
                              verdict=Review.JUSTIFIED,
                              note="Urgence confirmée par le SAMU")  # fmt: skip
    assert BreakGlass.objects.get(pk=declared.pk).review == Review.JUSTIFIED


def _new_patients(n: int, seed: int) -> list[Patient]:
    """Patients of the group's kind with no stay at all (every generated one has some)."""
    from rempart.records.services.patients import patient_create
    from rempart.synth.population import canary_identities

    return [patient_create(actor=SYSTEM, data=d) for d in canary_identities(count=n, seed=seed)]


def _patients_in_care(world: World, n: int) -> list[Patient]:
    chosen = _new_patients(n, seed=2)
    now = timezone.now() - dt.timedelta(hours=2)
    for p in chosen:
        care.stay_create(actor=SYSTEM, patient=p, service=world.ward, kind="full",
                         planned_admission=now, admitted_at=now)  # fmt: skip
    return chosen


def _code(device: SealedTOTPDevice, at: float | None = None) -> str:
    totp = device.totp(at)
    return f"{totp.token():06d}"


@pytest.mark.usefixtures("one_clock_hour")
def test_past_the_budget_the_second_factor_is_asked_then_the_account_locks(world, settings):
    settings.REMPART_READ_BUDGETS = {**settings.REMPART_READ_BUDGETS, "secretary": (4, 100)}
    secretary = world.actor("secretary")
    device = access.totp_device_create(actor=secretary, user_id=secretary.user_id)
    assert access.totp_device_confirm(actor=secretary, device=device, code=_code(device))
    patients = _patients_in_care(world, 8)
    for p in patients[:4]:
        sel.patient_get(actor=secretary, patient_id=p.pk)
    with pytest.raises(policy.StepUpRequired, match="second facteur"):
        sel.patient_get(actor=secretary, patient_id=patients[4].pk)
    assert _last_event().detail == {"refused": "step_up"}
    device.refresh_from_db()
    assert access.step_up(
        actor=secretary, device=device, code=_code(device, at=device.last_t * 30 + 30)
    )
    sel.patient_get(actor=secretary, patient_id=patients[4].pk)
    sel.patient_get(actor=secretary, patient_id=patients[5].pk)  # 6 = the hard limit, 1.5 x 4
    with pytest.raises(policy.AccountLocked):
        sel.patient_get(actor=secretary, patient_id=patients[6].pk)
    with pytest.raises(policy.AccountLocked):  # and everything else now
        sel.patient_get(actor=secretary, patient_id=patients[0].pk)
    alert = Alert.objects.get(kind="budget")
    assert alert.severity == "critical" and alert.audience == "security_officer"
    with pytest.raises(Exception, match="Motivez"):
        access.account_unlock(actor=world.actor("security"), user_id=secretary.user_id, reason="ok")
    access.account_unlock(actor=world.actor("security"), user_id=secretary.user_id,
                          reason="Pic d'admissions confirmé par la cadre")  # fmt: skip
    assert not policy.is_locked(secretary.user_id)


def test_searches_and_what_they_show_are_charged_too(world, settings):
    settings.REMPART_READ_BUDGETS = {**settings.REMPART_READ_BUDGETS, "secretary": (3, 100)}
    secretary = world.actor("secretary")
    probe = "2850375115042" + nir_check_digits("2850375115042")
    for _ in range(3):  # blind probing: no result, still one unit each
        assert sel.patients_find_by_nir(actor=secretary, nir=probe) == []
    with pytest.raises(policy.StepUpRequired):
        sel.patients_find_by_nir(actor=secretary, nir=probe)


def test_a_canary_locks_at_the_first_opening_but_not_in_search_results(world):
    planted = canaries_plant(actor=SYSTEM, per_establishment=2)
    canary = Patient.objects.get(pk=planted[0].patient_ids[0])
    secretary = world.actor("secretary")
    found = sel.patients_find_by_name_and_birth_date(
        actor=secretary, name=canary.birth_name, birth_date=canary.birth_date
    )
    assert canary.pk in [p.pk for p in found] and not policy.is_locked(secretary.user_id)
    with pytest.raises(policy.AccountLocked):
        sel.patient_get(actor=secretary, patient_id=canary.pk)
    alert = Alert.objects.get(kind="canary")
    assert alert.severity == "critical" and alert.patient_id == canary.pk
    assert policy.is_locked(secretary.user_id)


def test_canaries_look_like_any_other_patient_in_storage(world):
    planted = canaries_plant(actor=SYSTEM, per_establishment=2)
    canary = Patient.objects.get(pk=planted[0].patient_ids[0])
    ordinary = Patient.objects.exclude(pk__in=planted[0].patient_ids).first()
    assert canary.created_at.date() == ordinary.created_at.date()
    with connection.cursor() as cursor:
        cursor.execute("SELECT tag FROM access_canarymark")
        tags = [bytes(row[0]) for row in cursor.fetchall()]
    assert canary.pk.bytes not in tags and all(len(t) == 16 for t in tags)
    assert "Canary" in {e.resource_type for e in Event.objects.filter(action="create")}
    assert not Event.objects.filter(resource_type="Canary").exclude(patient_id=None).exists()


def test_the_totp_secret_is_sealed_and_a_code_works_once(world):
    secretary = world.actor("secretary")
    device = access.totp_device_create(actor=secretary, user_id=secretary.user_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM access_sealedtotpdevice WHERE id = %s", [device.pk])
        stored = bytes(cursor.fetchone()[0])
    assert device.secret.encode() not in stored and bytes.fromhex(device.secret) not in stored
    code = _code(device)
    assert access.totp_device_confirm(actor=secretary, device=device, code=code)
    device.refresh_from_db()
    assert not device.verify_token(code)  # replayed
    assert "secret=" in device.config_url and device.config_url.startswith("otpauth://totp/")


@pytest.mark.usefixtures("one_clock_hour")
def test_budgets_can_be_shared_through_redis(world, settings):
    import redis

    settings.REDIS_URL = "redis://127.0.0.1:6379/15"
    budgets._redis.cache_clear()
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    try:
        a, b = uuid.uuid4(), uuid.uuid4()
        assert budgets.touch(4242, [a]) == budgets.Usage(1, 1, 1)
        assert budgets.touch(4242, [a, b]) == budgets.Usage(2, 2, 2)
        assert budgets.touch(4243, [a]) == budgets.Usage(1, 1, 1)
    finally:
        client.flushdb()
        budgets._redis.cache_clear()


def test_writes_follow_the_same_rules(world):
    outsider = world.actor("outsider")
    with pytest.raises(policy.AccessDenied):  # a stay in someone else's establishment
        care.stay_create(actor=outsider, patient=world.stranger, service=world.ward, kind="full",
                         planned_admission=timezone.now())  # fmt: skip
    with pytest.raises(sel.PatientNotFound):
        from rempart.records.services.patients import patient_update

        data = replace(_data(world.patient), city="AILLEURS")
        patient_update(actor=outsider, patient=world.patient, data=data)
    assert Patient.objects.get(pk=world.patient.pk).city != "AILLEURS"


def _data(p: Patient) -> Any:
    from rempart.patients.validation import PatientData

    fields = PatientData.__dataclass_fields__
    return PatientData(**{k: getattr(p, k) or "" for k in fields if k not in ("extra", "gp_id")},
                       gp_id=p.gp_id)  # fmt: skip


def test_alerts_reach_a_webhook(world, settings):
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    settings.REMPART_ALERT_WEBHOOK = f"http://127.0.0.1:{server.server_port}/alertes"
    try:
        access.break_glass_declare(actor=world.actor("outsider"), patient_id=world.patient.pk,
                                   reason="on_call",
                                   justification="Inconscient, amené par les pompiers")  # fmt: skip
        thread.join(timeout=5)
    finally:
        server.server_close()
    assert len(received) == 1
    assert received[0]["kind"] == "break_glass" and received[0]["audience"] == "dpo"
    assert "pompiers" not in json.dumps(received)  # the free text stays sealed


def test_the_dpo_reading_access_reports_is_charged_like_a_chart(world, settings):
    from rempart.records.selectors.audit import patient_access_report

    settings.REMPART_READ_BUDGETS = {**settings.REMPART_READ_BUDGETS, "dpo": (2, 100)}
    dpo = world.actor("dpo")
    patient_access_report(actor=dpo, patient_id=world.patient.pk)
    patient_access_report(actor=dpo, patient_id=world.stranger.pk)
    with pytest.raises(policy.StepUpRequired):
        patient_access_report(actor=dpo, patient_id=_new_patients(1, seed=9)[0].pk)
