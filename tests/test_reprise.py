"""The "Reprise des données" page, through HTTP: an import's refused lines, kept sealed, are
corrected into patients (the registration page's validation and identity vigilance) or
discarded; each step recorded; the values erased once handled."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.test import Client

from rempart.audit.models import Event
from rempart.directory.models import Establishment, Practitioner, Role
from rempart.imports.models import ImportLine
from rempart.imports.services import import_file
from rempart.patients.models import Patient, PatientIdentifier
from rempart.synth.legacy import write_legacy_export
from tests.test_redteam import _device, _login, _staff

TODAY = dt.date(2026, 11, 28)


@pytest.fixture
def imported(group, tmp_path: Path):
    place = Establishment.objects.order_by("finess").first()
    path = tmp_path / "export.csv"
    gps = list(Practitioner.objects.filter(internal=False).values_list("rpps", flat=True))
    written = write_legacy_export(path, patients=300, seed=5, today=TODAY, gps=gps, faults=20)
    summary = import_file(path, establishment_finess=place.finess, batch_size=100, workers=0)
    return place, written, summary


def _form(values: dict[str, str]) -> dict[str, str]:
    fields = ["birth_name", "usage_name", "given_names", "first_given_name", "sex", "birth_date",
              "birth_place_code", "nir", "identity_status", "phone_mobile", "phone_home", "email",
              "address_line", "postcode", "city", "gp_rpps"]  # fmt: skip
    return {f: values.get(f, "") for f in fields}


def _initial(page: str, name: str) -> str:
    found = re.search(rf'name="{name}"[^>]*value="([^"]*)"', page)
    return found.group(1) if found else ""


def test_a_refused_line_is_corrected_into_a_patient_in_the_page(imported):
    place, written, summary = imported
    secretary = _staff("sec.reprise", Role.SECRETARY, place)
    client = Client()
    _login(client, secretary, _device(secretary))
    assert "export.csv" in client.get("/reprise/").content.decode()
    job = client.get(f"/reprise/{summary.job_id}/").content.decode()
    no_names = ImportLine.objects.filter(
        job_id=summary.job_id, kind="refused",
        line__in=[n for n, f in written.refused.items() if f == "no_name"],
    )  # fmt: skip
    line = next(x for x in no_names if x.content.get("medecin_traitant_rpps"))
    assert "birth_name: Le nom de naissance est obligatoire." in job
    assert f"/reprise/ligne/{line.pk}/" in job

    page = client.get(f"/reprise/ligne/{line.pk}/").content.decode()
    given = _initial(page, "given_names")
    assert given and _initial(page, "birth_name") == ""  # the line's values, back in the form
    rpps = line.content["medecin_traitant_rpps"]
    assert _initial(page, "gp_rpps") == rpps
    values = {"birth_name": "Reprise", "given_names": given, "sex": "F",
              "birth_date": "1971-05-04", "identity_status": "PROV", "gp_rpps": rpps}  # fmt: skip
    # Same validation as the registration page: a birth date in the future is refused.
    future = {**_form(values), "birth_date": "2999-01-01", "action": "correct"}
    refused = client.post(f"/reprise/ligne/{line.pk}/", future)
    assert refused.status_code == 200 and "dans le futur" in refused.content.decode()
    assert ImportLine.objects.get(pk=line.pk).status == "open"

    done = client.post(f"/reprise/ligne/{line.pk}/", {**_form(values), "action": "correct"})
    assert done.status_code == 302 and "/sejour/" in done["Location"]
    line.refresh_from_db()
    assert line.status == "corrected" and line.content is None and line.patient_id
    patient = Patient.objects.get(pk=line.patient_id)
    assert patient.birth_name == "REPRISE" and patient.given_names == given
    assert Practitioner.objects.get(pk=patient.gp_id).rpps == rpps  # from the directory
    assert PatientIdentifier.objects.filter(patient=patient, establishment=place).exists()
    steps = Event.objects.filter(resource_type="ImportLine", resource_id=str(line.pk))
    assert {e.action for e in steps} == {"read", "update"}
    assert client.get(f"/reprise/ligne/{line.pk}/").status_code == 404  # handled: gone


def test_a_refused_line_is_discarded_with_a_reason_from_the_list(imported):
    _, _, summary = imported
    dpo = _staff("dpo.reprise", Role.DPO, None)
    client = Client()
    _login(client, dpo, _device(dpo))
    line = ImportLine.objects.filter(job_id=summary.job_id, kind="refused").first()
    page = client.get(f"/reprise/ligne/{line.pk}/").content.decode()
    assert 'value="correct"' not in page  # the DPO discards; the desk registers patients
    free_text = client.post(f"/reprise/ligne/{line.pk}/",
                            {"action": "discard", "reason": "DUPONT Jean, déjà là"})  # fmt: skip
    assert free_text.status_code == 200
    client.post(f"/reprise/ligne/{line.pk}/", {"action": "discard", "reason": "test"})
    line.refresh_from_db()
    assert line.status == "discarded" and line.content is None
    assert "Enregistrement de test" in line.reasons
    assert Event.objects.filter(action="delete", resource_id=str(line.pk)).exists()


def test_other_roles_and_other_establishments_do_not_see_the_imports(imported):
    place, _, summary = imported
    elsewhere = Establishment.objects.exclude(pk=place.pk).first()
    other_desk = _staff("sec.ailleurs", Role.SECRETARY, elsewhere)
    other = Client()
    _login(other, other_desk, _device(other_desk))
    assert "export.csv" not in other.get("/reprise/").content.decode()
    assert other.get(f"/reprise/{summary.job_id}/").status_code == 404
    refused = ImportLine.objects.filter(job_id=summary.job_id, kind="refused").first()
    assert other.get(f"/reprise/ligne/{refused.pk}/").status_code == 404
    nurse = _staff("inf.reprise", Role.NURSE, place)
    client = Client()
    _login(client, nurse, _device(nurse))
    assert client.get("/reprise/").status_code == 403
    line = ImportLine.objects.filter(job_id=summary.job_id, kind="refused").first()
    assert client.get(f"/reprise/ligne/{line.pk}/").status_code == 403


def test_the_pages_label_every_field_and_have_one_title(imported):
    from tests.test_pages_a11y import Fields

    place, _, summary = imported
    secretary = _staff("sec.a11y", Role.SECRETARY, place)
    client = Client()
    _login(client, secretary, _device(secretary))
    line = ImportLine.objects.filter(job_id=summary.job_id, kind="refused").first()
    for url in ("/reprise/", f"/reprise/{summary.job_id}/", f"/reprise/ligne/{line.pk}/"):
        response = client.get(url)
        assert response.status_code == 200, url
        parsed = Fields()
        parsed.feed(response.content.decode())
        assert parsed.lang == "fr" and parsed.h1 == 1, url
        assert parsed.unlabelled() == [], url


@pytest.mark.usefixtures("one_clock_hour")
def test_reading_refused_lines_costs_budget_like_charts(imported, settings):
    """A stolen desk account cannot read the refused lines of an import for free: each one is
    charged like a chart, and past the budget the second factor is asked again."""
    place, _, summary = imported
    settings.REMPART_READ_BUDGETS = {**settings.REMPART_READ_BUDGETS, "secretary": (2, 100, 300)}
    secretary = _staff("sec.curieuse", Role.SECRETARY, place)
    client = Client()
    _login(client, secretary, _device(secretary))
    lines = list(ImportLine.objects.filter(job_id=summary.job_id, kind="refused")[:3])
    assert [client.get(f"/reprise/ligne/{x.pk}/").status_code for x in lines[:2]] == [200, 200]
    third = client.get(f"/reprise/ligne/{lines[2].pk}/")
    assert third.status_code == 302 and third["Location"].startswith("/confirmer/")
