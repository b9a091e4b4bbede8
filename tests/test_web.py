"""Login works and pages need it."""

from __future__ import annotations

from django.utils import timezone

from rempart.directory.models import Role
from rempart.records.services.directory import staff_create

PASSWORD = "un-mot-de-passe-de-test"


def test_the_home_page_sends_an_anonymous_visitor_to_login(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/connexion/")


def test_the_password_alone_leads_to_the_second_factor_not_to_the_pages(client, db):
    staff_create(username="secretaire.test", password=PASSWORD, role=Role.SECRETARY)
    page = client.get("/connexion/")
    assert "Identifiant" in page.content.decode()
    response = client.post("/connexion/", {"username": "secretaire.test", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/")["Location"] == "/connexion/second-facteur/"
    assert client.get("/patients/")["Location"] == "/connexion/second-facteur/"


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(client, db):
    staff_create(username="infirmier.test", password=PASSWORD, role=Role.NURSE)
    response = client.post("/connexion/", {"username": "infirmier.test", "password": "faux"})
    assert response.status_code == 200
    assert "Identifiant ou mot de passe incorrect." in response.content.decode()


def test_passwords_are_hashed_with_argon2(db):
    staff = staff_create(username="medecin.test", password=PASSWORD, role=Role.PHYSICIAN)
    assert staff.user.password.startswith("argon2")


def test_french_first_english_on_request(client, db):
    page = client.get("/connexion/").content.decode()
    assert '<html lang="fr">' in page and "Se connecter" in page
    client.post("/i18n/setlang/", {"language": "en", "next": "/connexion/"})
    page = client.get("/connexion/").content.decode()
    assert '<html lang="en">' in page and "Log in" in page and "Se connecter" not in page
    staff_create(username="nurse.en", password=PASSWORD, role=Role.NURSE)
    client.post("/connexion/", {"username": "nurse.en", "password": PASSWORD})
    enrol = client.get("/connexion/enrolement/").content.decode()
    assert "Turn on the second factor" in enrol and "Activation code" in enrol


def test_a_session_is_written_at_most_once_a_minute_and_its_expiry_slides(group, monkeypatch):
    """Every page used to write its session (a write and a commit per page); now the idle
    timeout slides once a minute."""
    import time

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from rempart.directory.models import Establishment
    from tests.test_breach_pages import _client

    here = Establishment.objects.order_by("finess").first()
    desk = _client("sec.session", Role.SECRETARY, here)
    desk.get("/")
    with CaptureQueriesContext(connection) as again:
        desk.get("/")
    assert not any("django_session" in q["sql"] and q["sql"].startswith("UPDATE")
                   for q in again.captured_queries)  # fmt: skip
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    with CaptureQueriesContext(connection) as next_minute:
        desk.get("/")
    assert any("django_session" in q["sql"] and q["sql"].startswith("UPDATE")
               for q in next_minute.captured_queries)  # fmt: skip


def test_the_ward_list_reads_as_many_times_for_more_lines(group):
    """The desk's home page lists up to 200 current stays: a query per line (a deferred column
    read late, a relation not joined) would multiply under load. More lines, same queries, and
    each line shows its patient and service."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from rempart.audit.context import Actor
    from rempart.care.models import Stay
    from rempart.directory.models import Establishment
    from rempart.patients.models import Patient
    from rempart.records.services import care
    from tests.test_breach_pages import _client

    here = Establishment.objects.order_by("finess").first()
    desk = _client("sec.queries", Role.SECRETARY, here)
    desk.get("/")
    with CaptureQueriesContext(connection) as before:
        desk.get("/")
    current = Stay.objects.filter(establishment=here, admitted_at__isnull=False,
                                  discharged_at=None, cancelled_at=None)  # fmt: skip
    lines = current.count()
    ward = here.services.order_by("code").first()
    for patient in Patient.objects.exclude(stays__establishment=here)[:5]:
        stay = care.stay_create(actor=Actor.system("tests"), patient=patient, service=ward,
                                kind="full", planned_admission=timezone.now())  # fmt: skip
        care.stay_admit(actor=Actor.system("tests"), stay=stay)
    assert current.count() == lines + 5
    with CaptureQueriesContext(connection) as after:
        page = desk.get("/").content.decode()
    assert len(after.captured_queries) == len(before.captured_queries)
    for stay in current.select_related("patient", "service").order_by("planned_admission")[:200]:
        assert f"/patients/{stay.patient_id}/" in page and stay.patient.birth_name in page
        assert stay.service.name in page
