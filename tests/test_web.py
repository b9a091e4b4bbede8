"""Login works and pages need it."""

from __future__ import annotations

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
