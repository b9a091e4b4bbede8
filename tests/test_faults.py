"""Faults, played: Redis down under the budgets, the audit trail's disk full, and (with a real
server) a web worker and the sealer killed with -9 in the middle of writes, PostgreSQL restarted
under load. Each ends with nothing lost, nothing half written, nothing revealed, and the trail
verifying."""

from __future__ import annotations

import pytest
from django.db import connection

from rempart.access import budgets, policy
from rempart.access.models import Alert, PatientSeen
from rempart.audit.services import AuditUnavailable
from rempart.records.selectors import patients as sel
from tests.test_access import _patients_in_care, world  # noqa: F401  # the fixture


def test_with_redis_down_the_budgets_are_counted_in_the_database_never_dropped(world, settings):  # noqa: F811
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.REMPART_READ_BUDGETS = {**settings.REMPART_READ_BUDGETS, "secretary": (3, 50, 100)}
    budgets._redis.cache_clear()
    secretary = world.actor("secretary")
    try:
        patients = _patients_in_care(world, 5)
        for patient in patients[:3]:
            sel.patient_get(actor=secretary, patient_id=patient.pk)
        with pytest.raises(policy.StepUpRequired):  # the budget holds: the 4th asks again
            sel.patient_get(actor=secretary, patient_id=patients[3].pk)
    finally:
        budgets._redis.cache_clear()
    assert PatientSeen.objects.filter(user_id=secretary.user_id).count() == 4
    told = Alert.objects.filter(audience="security_officer", message__contains="Redis")
    assert told.count() == 1  # once, not at every read


@pytest.fixture
def disk_full() -> None:
    """The audit table's storage is full: PostgreSQL answers every insert with SQLSTATE 53100
    (disk_full), as it does when its disk is. Played with a trigger on the one table."""
    with connection.cursor() as cursor:
        cursor.execute("""
            CREATE FUNCTION pg_temp.no_space() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'
                  USING ERRCODE = '53100'; END $$;
            CREATE TRIGGER audit_disk_full BEFORE INSERT ON audit_event
            FOR EACH ROW EXECUTE FUNCTION pg_temp.no_space();
        """)  # fmt: skip


def test_with_the_trails_disk_full_nothing_is_shown_and_nothing_written(world, disk_full):  # noqa: F811
    """Fail closed: the read is refused (no patient data returned), a write is rolled back."""
    from rempart.records.services.patients import patient_update
    from tests.test_access import _data

    physician = world.actor("physician")
    with pytest.raises(AuditUnavailable):
        sel.patient_get(actor=physician, patient_id=world.patient.pk)
    before = (world.patient.version, world.patient.email)
    changed = _data(world.patient)
    changed = type(changed)(**{**vars(changed), "email": "nouvelle.adresse@exemple.fr"})
    with pytest.raises(AuditUnavailable):
        patient_update(actor=physician, patient=world.patient, data=changed)
    world.patient.refresh_from_db()
    assert (world.patient.version, world.patient.email) == before


def test_through_the_pages_a_full_trail_gives_a_page_without_data(world, disk_full, client):  # noqa: F811
    from tests.test_redteam import _code, _device

    user = world.users["physician"]
    device = _device(user)
    with connection.cursor() as cursor:  # the login itself must be recorded: let it pass
        cursor.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_disk_full")
    client.post("/connexion/", {"username": user.username, "password": "Un-mot-de-passe-long-7"})
    client.post("/connexion/second-facteur/", {"code": _code(device)})
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_disk_full")
    page = client.get(f"/patients/{world.patient.pk}/")
    body = page.content.decode()
    assert page.status_code == 503
    assert world.patient.birth_name not in body and str(world.patient.birth_date.year) not in body
