"""Red team, through HTTP: a stolen medical-secretary account (password and second factor, as a
phisher takes both) holding names and birth dates from an earlier leak tries to bring the group's
patients into its care by planning stays, as the attack on the first version did (43 charts
outside its care in 33 seconds). Also: clinicians see clinical content only once the patient is
admitted in their service; a clinician attached to no service sees nothing; break-the-glass
declarations have consequences."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from rempart.access.canaries import canaries_plant
from rempart.access.models import AccountLock, Alert, AlertKind, BreakGlass, CareOpening
from rempart.audit.context import Actor
from rempart.audit.models import Event
from rempart.care.models import Prescription, Stay
from rempart.directory.models import Establishment, Role, Service
from rempart.patients.models import Patient
from tests.test_redteam import _device, _login, _staff

SYSTEM = Actor.system("tests")


@pytest.fixture
def here(group) -> Establishment:
    return Establishment.objects.order_by("finess").first()


def _known_elsewhere_only(here: Establishment, count: int) -> list[Patient]:
    """Patients with prescriptions, stays in other establishments, none here: the thief's
    targets (the group's patients it has no reason to see)."""
    here_ids = Stay.objects.filter(establishment=here).values("patient_id")
    with_lines = Prescription.objects.values("patient_id")
    candidates = (
        Patient.objects.exclude(pk__in=here_ids).filter(pk__in=with_lines).order_by("id")[:count]
    )
    return list(candidates)


def _plan(client: Client, patient: Patient, service: Service) -> Any:
    when = (timezone.localtime() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    return client.post(f"/patients/{patient.pk}/sejour/", {
        "service": str(service.pk), "kind": "consultation", "planned_admission": when,
    })  # fmt: skip


def test_a_stolen_secretary_account_planning_stays_sees_no_clinical_content_and_is_alerted(
    here, client
):
    user = _staff("sec.volee", Role.SECRETARY, here)
    _login(client, user, _device(user))
    service = Service.objects.filter(establishment=here).order_by("code").first()
    elsewhere = {e.name for e in Establishment.objects.exclude(pk=here.pk)}
    targets = _known_elsewhere_only(here, 12)
    assert len(targets) == 12
    alerted_after = None
    for n, patient in enumerate(targets, start=1):
        criteria = {"name": patient.birth_name, "birth_date": patient.birth_date.isoformat()}
        found = client.post("/patients/", criteria)
        assert str(patient.pk) in found.content.decode()
        assert _plan(client, patient, service)["Location"] == f"/patients/{patient.pk}/"
        chart = client.get(f"/patients/{patient.pk}/").content.decode()
        assert patient.birth_name in chart  # the desk sees identity and contact ...
        assert "/prescriptions/" not in chart  # ... but no prescription
        assert not any(name in chart for name in elsewhere)  # nor another establishment's stay
        assert "bris de glace" in chart
        prescription = Prescription.objects.filter(patient=patient).first()
        assert client.get(f"/prescriptions/{prescription.pk}/").status_code == 404
        assert client.get(f"/prescriptions/{prescription.pk}/ordonnance.pdf").status_code == 404
        # nor the access report, which names every establishment that read the record
        assert client.get(f"/patients/{patient.pk}/acces/").status_code == 404
        if (
            alerted_after is None
            and Alert.objects.filter(
                user=user, kind=AlertKind.CARE, audience=Role.SECURITY_OFFICER
            ).exists()
        ):
            alerted_after = n
    # Alerted at the fifth patient new to the establishment, well before ten.
    assert alerted_after == 5
    assert Alert.objects.filter(user=user, kind=AlertKind.CARE).count() == 1  # once, not 8 more
    openings = CareOpening.objects.filter(user=user)
    assert openings.count() == 12 and all(o.new_here for o in openings)
    created = Event.objects.filter(username="sec.volee", resource_type="Stay", action="create")
    assert all(e.detail.get("care") == "opened" for e in created) and created.count() == 12

    # The DPO sees the planned stays, never admitted, with the account that planned them.
    for stay in Stay.objects.filter(patient__in=targets, establishment=here):
        Stay.objects.filter(pk=stay.pk).update(
            planned_admission=timezone.now() - dt.timedelta(days=2)
        )
    dpo = _staff("dpo.groupe", Role.DPO, None)
    dpo_client = Client()
    _login(dpo_client, dpo, _device(dpo))
    page = dpo_client.get("/dpo/").content.decode()
    assert page.count("sec.volee <strong>(nouveau dans l'établissement)</strong>") == 12
    assert "jamais admis" in page


@pytest.mark.usefixtures("one_clock_hour")
def test_planning_a_stay_is_charged_to_the_budget_like_a_chart(here, client, settings):
    settings.REMPART_READ_BUDGETS = {**settings.REMPART_READ_BUDGETS, "secretary": (3, 100)}
    user = _staff("sec.volee", Role.SECRETARY, here)
    _login(client, user, _device(user))
    service = Service.objects.filter(establishment=here).order_by("code").first()
    targets = _known_elsewhere_only(here, 4)
    for patient in targets[:3]:
        assert _plan(client, patient, service).status_code == 302
    # The fourth patient is past the hourly budget: the second factor is asked first, and no
    # stay is written.
    response = _plan(client, targets[3], service)
    assert response["Location"].startswith("/confirmer/")
    assert not Stay.objects.filter(patient=targets[3], establishment=here).exists()


def test_planning_a_stay_for_a_canary_locks_the_account(here, client):
    planted = canaries_plant(actor=SYSTEM, per_establishment=1)
    canary = Patient.objects.get(pk=planted[0].patient_ids[0])
    user = _staff("sec.volee", Role.SECRETARY, here)
    _login(client, user, _device(user))
    service = Service.objects.filter(establishment=here).order_by("code").first()
    past = Stay.objects.filter(patient=canary).count()  # modelled on a real patient's
    assert past >= 1
    assert _plan(client, canary, service).status_code == 403
    assert AccountLock.objects.filter(user=user, lifted_at=None).exists()
    assert Alert.objects.filter(user=user, kind=AlertKind.CANARY, severity="critical").exists()
    assert Stay.objects.filter(patient=canary).count() == past  # nothing written


def test_clinical_content_opens_once_the_patient_is_admitted_in_the_clinicians_service(
    here, client
):
    service = Service.objects.filter(establishment=here).order_by("code").first()
    secretary = _staff("sec.accueil", Role.SECRETARY, here)
    nurse = _staff("inf.service", Role.NURSE, here)
    nurse.staff.services.set([service])
    desk, ward = Client(), Client()
    _login(desk, secretary, _device(secretary))
    _login(ward, nurse, _device(nurse))
    patient = _known_elsewhere_only(here, 1)[0]
    assert _plan(desk, patient, service).status_code == 302
    stay = Stay.objects.get(patient=patient, establishment=here)
    # Planned: identity for both, clinical content for neither.
    assert "/prescriptions/" not in ward.get(f"/patients/{patient.pk}/").content.decode()
    Stay.objects.filter(pk=stay.pk).update(planned_admission=timezone.now())
    assert desk.post(f"/sejours/{stay.pk}/entree/").status_code == 302
    # Admitted in the nurse's service: the nurse sees prescriptions; the desk still does not.
    assert "/prescriptions/" in ward.get(f"/patients/{patient.pk}/").content.decode()
    assert "/prescriptions/" not in desk.get(f"/patients/{patient.pk}/").content.decode()
    # Cancelling is only for stays not yet admitted.
    desk.post(f"/sejours/{stay.pk}/annulation/")
    assert Stay.objects.get(pk=stay.pk).cancelled_at is None


def test_a_cancelled_stay_closes_the_desk_access_and_is_listed(here, client):
    service = Service.objects.filter(establishment=here).order_by("code").first()
    secretary = _staff("sec.accueil", Role.SECRETARY, here)
    _login(client, secretary, _device(secretary))
    patient = _known_elsewhere_only(here, 1)[0]
    _plan(client, patient, service)
    stay = Stay.objects.get(patient=patient, establishment=here)
    assert client.post(f"/sejours/{stay.pk}/annulation/").status_code == 302
    assert Stay.objects.get(pk=stay.pk).cancelled_at is not None
    assert client.get(f"/patients/{patient.pk}/").status_code == 404
    assert client.post(f"/sejours/{stay.pk}/n-importe-quoi/").status_code == 404


def test_a_clinician_attached_to_no_service_sees_nothing(here, client):
    nurse = _staff("inf.sans.service", Role.NURSE, here)
    _login(client, nurse, _device(nurse))
    present = Stay.objects.filter(establishment=here, admitted_at__isnull=False,
                                  discharged_at=None).first()  # fmt: skip
    assert present is not None
    home = client.get("/").content.decode()
    assert f"/patients/{present.patient_id}/" not in home
    assert client.get(f"/patients/{present.patient_id}/").status_code == 404


def test_an_unjustified_break_the_glass_alerts_the_security_officer_and_can_lock(here, client):
    user = _staff("med.curieux", Role.PHYSICIAN, here)
    _login(client, user, _device(user))
    targets = _known_elsewhere_only(here, 5)
    for patient in targets[:4]:
        client.post(f"/patients/{patient.pk}/bris-de-glace/", {
            "reason": "on_call", "justification": "Patient de garde, appel de l'infirmière",
        })  # fmt: skip
    assert BreakGlass.objects.filter(user=user).count() == 4
    rate = Alert.objects.filter(user=user, kind=AlertKind.BREAK_GLASS_RATE)
    assert rate.count() == 1 and rate.get().audience == Role.SECURITY_OFFICER

    dpo = _staff("dpo.groupe", Role.DPO, None)
    dpo_client = Client()
    _login(dpo_client, dpo, _device(dpo))
    first, second = BreakGlass.objects.filter(user=user).order_by("declared_at")[:2]
    dpo_client.post("/dpo/", {"id": str(first.pk), "verdict": "unjustified",
                              "note": "Pas de garde ce soir-là"})  # fmt: skip
    unjustified = Alert.objects.filter(user=user, kind=AlertKind.UNJUSTIFIED)
    assert unjustified.count() == 1 and unjustified.get().audience == Role.SECURITY_OFFICER
    # Every emergency access still running ended with the verdict.
    assert not BreakGlass.objects.filter(user=user, expires_at__gt=timezone.now()).exists()
    assert client.get(f"/patients/{targets[1].pk}/").status_code == 404
    assert not AccountLock.objects.filter(user=user, lifted_at=None).exists()
    dpo_client.post("/dpo/", {"id": str(second.pk), "verdict": "unjustified",
                              "note": "Toujours pas de garde", "lock": "on"})  # fmt: skip
    assert AccountLock.objects.filter(user=user, lifted_at=None).exists()
    lock = Event.objects.filter(action="lock", resource_id=str(user.pk)).get()
    assert lock.username == "dpo.groupe"  # recorded as the DPO's decision
    assert client.get("/")["Location"].startswith("/connexion/")  # its sessions are over


def test_the_security_officer_locks_an_account_by_hand(here, client):
    user = _staff("sec.perdu", Role.SECRETARY, here)
    officer = _staff("rssi.groupe", Role.SECURITY_OFFICER, None)
    _login(client, officer, _device(officer))
    refused = client.post("/securite/", {"action": "lock", "username": user.username,
                                         "reason": "court"})  # fmt: skip
    assert "Motivez" in refused.content.decode()
    client.post("/securite/", {"action": "lock", "username": user.username,
                               "reason": "Ordinateur portable volé ce matin"})  # fmt: skip
    assert AccountLock.objects.filter(user=user, lifted_at=None).exists()
    reason = "Ordinateur portable volé ce matin"
    unknown = client.post("/securite/", {"action": "lock", "username": str(uuid.uuid4()),
                                         "reason": reason})  # fmt: skip
    assert "Compte inconnu" in unknown.content.decode()
