"""Every form field on the pages people use has a label (or an accessible name), every page says
its language and has one h1: checked on the rendered HTML of a logged-in session."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.utils import timezone

from rempart.access.services import totp_device_create
from rempart.audit.context import Actor
from rempart.care.models import Stay
from rempart.directory.models import Establishment, Role
from rempart.lib.identifiers import luhn_complete
from rempart.records.services.directory import practitioner_create, staff_create

PASSWORD = "Un-mot-de-passe-long-42"


class Fields(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str]] = []
        self.labelled: set[str] = set()
        self.h1 = 0
        self.lang = ""
        self._in_label = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.lang = a.get("lang", "")
        elif tag == "h1":
            self.h1 += 1
        elif tag == "label":
            self._in_label += 1
            if a.get("for"):
                self.labelled.add(a["for"])
        elif tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.inputs.append({**a, "wrapped": "1" if self._in_label else ""})

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._in_label -= 1

    def unlabelled(self) -> list[str]:
        return [
            f.get("name", "?") for f in self.inputs
            if not f["wrapped"] and f.get("id") not in self.labelled
            and not f.get("aria-label") and not f.get("aria-labelledby")
        ]  # fmt: skip


@pytest.fixture
def physician_client(group, client):
    here = Establishment.objects.order_by("finess").first()
    ward = here.services.order_by("code").first()
    doctor = practitioner_create(rpps=luhn_complete("1007777777"), family_name="LISIBLE",
                                 given_name="Ada", specialty="Médecine interne", internal=True,
                                 establishments=[here])  # fmt: skip
    staff = staff_create(username="dr.a11y", password=PASSWORD, role=Role.PHYSICIAN,
                         establishments=[here], services=[ward], practitioner=doctor)  # fmt: skip
    user = staff.user
    device = totp_device_create(actor=Actor.system("tests"), user_id=user.pk)
    device.confirmed = True
    device.save()
    client.post("/connexion/", {"username": user.username, "password": PASSWORD})
    client.post("/connexion/second-facteur/", {"code": f"{device.totp().token():06d}"})
    stay = Stay.objects.filter(establishment=here, service=ward).first()
    Stay.objects.filter(pk=stay.pk).update(discharged_at=None, admitted_at=timezone.now())
    return client, stay.patient_id


def test_every_field_has_a_label_and_every_page_a_language_and_a_title(physician_client):
    client, patient_id = physician_client
    pages = ["/", "/patients/", "/patients/nouveau/", f"/patients/{patient_id}/",
             f"/patients/{patient_id}/modifier/", f"/patients/{patient_id}/sejour/",
             f"/patients/{patient_id}/prescriptions/nouvelle/",
             f"/patients/{patient_id}/bris-de-glace/",
             f"/patients/{patient_id}/acces/"]  # fmt: skip
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        parsed = Fields()
        parsed.feed(response.content.decode())
        assert parsed.lang == "fr" and parsed.h1 == 1, url
        assert parsed.unlabelled() == [], url
