"""The export and leak-analysis pages through HTTP: a secretary asks, the DPO approves, the
secretary produces (the passphrase shown once) and downloads; the DPO posts a sample and reads
the report, as a page, a PDF and JSON. Nobody else gets in."""

from __future__ import annotations

import re

import pyrage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from rempart.breach.models import BreachAnalysis
from rempart.directory.models import Establishment, Role
from rempart.exports.models import ExportRequest
from tests.test_breach import _db_rows, _to_csv
from tests.test_redteam import _device, _login, _staff


def _client(username: str, role: Role, place: Establishment | None) -> Client:
    user = _staff(username, role, place)
    client = Client()
    _login(client, user, _device(user))
    return client


def test_an_export_goes_from_request_to_download_through_the_pages(group):
    here = Establishment.objects.order_by("finess").first()
    secretary = _client("sec.pages", Role.SECRETARY, here)
    dpo = _client("dpo.pages", Role.DPO, None)
    form = {"purpose": "recall", "detail": "Rappel vaccinal", "establishment": str(here.pk),
            "groups": ["ipp", "identite", "telephone"], "format": "csv",
            "recipient_kind": "passphrase", "recipient": ""}  # fmt: skip
    asked = secretary.post("/exports/", form)
    assert asked.status_code == 302
    export = ExportRequest.objects.get()
    page = dpo.get("/exports/").content.decode()
    assert "Demandes à décider" in page and "sec.pages" in page
    assert secretary.post(f"/exports/{export.pk}/", {"action": "approve"}).status_code == 403
    assert ExportRequest.objects.get().status == "requested"  # the asker cannot approve
    dpo.post(f"/exports/{export.pk}/", {"action": "approve", "note": "ok"})
    assert ExportRequest.objects.get().status == "approved"
    produced = secretary.post(f"/exports/{export.pk}/", {"action": "produce"}).content.decode()
    passphrase = re.search(r'<code id="passphrase">([^<]+)</code>', produced).group(1)
    assert passphrase not in secretary.get(f"/exports/{export.pk}/").content.decode()  # once
    download = secretary.get(f"/exports/{export.pk}/fichier/")
    sealed = b"".join(download.streaming_content)
    plain = pyrage.passphrase.decrypt(sealed, passphrase).decode("utf-8-sig")
    assert plain.splitlines()[0].startswith("ipp;nom_naissance")
    assert dpo.get(f"/exports/{export.pk}/fichier/").status_code == 403
    nurse = _client("inf.pages", Role.NURSE, here)
    assert nurse.get("/exports/").status_code == 403


def test_the_dpo_posts_a_sample_and_reads_the_report(group):
    dpo = _client("dpo.fuite", Role.DPO, None)
    data = _to_csv(_db_rows(60))
    posted = dpo.post("/fuites/", {"sample": SimpleUploadedFile("fuite.csv", data)})
    assert posted.status_code == 302
    analysis = BreachAnalysis.objects.get()
    page = dpo.get(posted["Location"]).content.decode()
    assert "Correspondances" in page and page.count("<svg") == 4 and "fuite.csv" in page
    assert dpo.get(f"/fuites/{analysis.pk}/rapport.pdf").content.startswith(b"%PDF")
    assert dpo.get(f"/fuites/{analysis.pk}/rapport.json").json()["matches"]["exact"] >= 55
    bad = dpo.post("/fuites/", {"sample": SimpleUploadedFile("x.pdf", b"%PDF-1.4 nothing")})
    assert "Fichier illisible" in bad.content.decode() and BreachAnalysis.objects.count() == 1
    here = Establishment.objects.order_by("finess").first()
    secretary = _client("sec.fuite", Role.SECRETARY, here)
    assert secretary.get("/fuites/").status_code == 403
    assert secretary.get(f"/fuites/{analysis.pk}/").status_code == 403


def test_the_sample_upload_keeps_its_csrf_check(group):
    """The upload view swaps Django's upload handlers (memory only), which needs the CSRF check
    moved inside the view: a post without the token is still refused."""
    user = _staff("dpo.csrf", Role.DPO, None)
    strict = Client(enforce_csrf_checks=True)
    from tests.test_redteam import PASSWORD, _code

    device = _device(user)
    page = strict.get("/connexion/")
    token = page.cookies["csrftoken"].value
    strict.post("/connexion/", {"username": user.username, "password": PASSWORD,
                                "csrfmiddlewaretoken": token})  # fmt: skip
    token = strict.cookies["csrftoken"].value  # rotated at login
    strict.post("/connexion/second-facteur/", {"code": _code(device),
                                               "csrfmiddlewaretoken": token})  # fmt: skip
    assert strict.get("/fuites/").status_code == 200
    data = _to_csv(_db_rows(10))
    refused = strict.post("/fuites/", {"sample": SimpleUploadedFile("f.csv", data)})
    assert refused.status_code == 403 and not BreachAnalysis.objects.exists()
    token = strict.cookies["csrftoken"].value
    accepted = strict.post("/fuites/", {"sample": SimpleUploadedFile("f.csv", data),
                                        "csrfmiddlewaretoken": token})  # fmt: skip
    assert accepted.status_code == 302 and BreachAnalysis.objects.count() == 1
