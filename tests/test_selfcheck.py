"""The patients' self-check, through HTTP: a leaked identity is found with its own categories, a
patient who is not in the leak is not (no "who is a patient" oracle), every answer has the same
size, the identity never reaches the server, bad requests are refused and the page is
rate-limited."""

from __future__ import annotations

import orjson
import pytest
from django.test import Client
from django.utils import timezone

from rempart.breach import notify
from rempart.breach.models import LeakedPatient, SelfCheckEntry
from rempart.breach.selfcheck import bucket_of, digest, identity_key, selfcheck_publish
from rempart.breach.services import breach_analyse
from rempart.breach.traits import CATEGORY_BIT
from rempart.patients.models import Patient
from tests.test_breach import CONSOLE, _db_rows, _to_csv
from tests.test_exports import people  # noqa: F401  # the fixture


@pytest.fixture
def published(people):  # noqa: F811
    rows = _db_rows(60)
    for i, row in enumerate(rows):
        if i % 2:
            row["mail"] = ""  # half the people without their e-mail in the leak
    analysis = breach_analyse(actor=CONSOLE, data=_to_csv(rows), file_name="vente.csv")
    breach = notify.breach_open(actor=people["dpo"], aware_at=timezone.now(),
                                analysis_ids=(analysis.pk,))  # fmt: skip
    return selfcheck_publish(actor=people["dpo"], breach_id=breach.pk)


def _ask(client: Client, publication, patient: Patient) -> int | None:
    """What the browser does: hash here, send the bucket, compare, unmask."""
    key = identity_key(patient.birth_name, patient.first_given_name, patient.birth_date.isoformat())
    hashed = digest(key, bytes(publication.salt), publication.iterations)
    answer = client.post("/verifier-mes-donnees/seau/", orjson.dumps(
        {"p": str(publication.pk), "b": bucket_of(hashed, publication.bits)}),
        content_type="application/json")  # fmt: skip
    assert answer.status_code == 200 and answer["Cache-Control"] == "no-store"
    entries = answer.json()["entries"]
    assert len(entries) == publication.pad  # the same size whatever the bucket holds
    for tag, masked in entries:
        if tag == hashed[:16].hex():
            return masked ^ int.from_bytes(hashed[16:18], "big")
    return None


def test_a_leaked_person_learns_what_leaked_and_nobody_else_is_revealed(published):
    client = Client()
    leaked = list(LeakedPatient.objects.all())
    assert published.people == len(leaked) == 60
    for one in leaked[:6]:
        patient = Patient.objects.get(pk=one.patient_id)
        mask = _ask(client, published, patient)
        assert mask == sum(CATEGORY_BIT[c] for c in one.categories)
    # A patient of the group who is not in the leak: not found (no oracle of who is a patient).
    outside = Patient.objects.exclude(pk__in=[lp.patient_id for lp in leaked]).first()
    assert _ask(client, published, outside) is None
    # Nothing in the tables is an identity: entries are hashes and masks.
    tags = [bytes(t) for t in SelfCheckEntry.objects.values_list("tag", flat=True)]
    assert len(tags) >= 60 and all(len(t) == 16 for t in tags)


def test_bad_requests_are_refused_and_the_page_is_rate_limited(published, settings):
    client = Client()
    assert client.get("/verifier-mes-donnees/").status_code == 200  # public, no login
    for body in (b"{", orjson.dumps({"p": str(published.pk)}),
                 orjson.dumps({"p": "nope", "b": 1}),
                 orjson.dumps({"p": str(published.pk), "b": 1 << published.bits})):  # fmt: skip
        assert client.post("/verifier-mes-donnees/seau/", body,
                           content_type="application/json").status_code == 400  # fmt: skip
    settings.REMPART_SELFCHECK_PER_HOUR = 30
    ask = orjson.dumps({"p": str(published.pk), "b": 0})
    statuses = [client.post("/verifier-mes-donnees/seau/", ask,
                            content_type="application/json").status_code
                for _ in range(30)]  # fmt: skip
    assert statuses[-1] == 429 and statuses.count(200) == 30 - 4  # the 4 bad ones counted


def test_a_withdrawn_check_answers_nothing(people, published):  # noqa: F811
    from rempart.breach.selfcheck import selfcheck_withdraw

    selfcheck_withdraw(actor=people["dpo"], breach_id=published.breach_id)
    asked = Client().post("/verifier-mes-donnees/seau/",
                          orjson.dumps({"p": str(published.pk), "b": 0}),
                          content_type="application/json")  # fmt: skip
    assert asked.status_code == 400
    assert "Aucune fuite analysée" in Client().get("/verifier-mes-donnees/").content.decode()


def test_the_public_page_is_labelled_in_french(published):
    from tests.test_pages_a11y import Fields

    parsed = Fields()
    parsed.feed(Client().get("/verifier-mes-donnees/").content.decode())
    assert parsed.lang == "fr" and parsed.h1 == 1 and parsed.unlabelled() == []
    assert len(parsed.inputs) == 4  # the language choice and the three traits
