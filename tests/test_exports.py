"""Controlled exports: two people, a purpose, a file encrypted to its recipient that expires,
watermarked rows and canary rows of its own, every step in the audit trail."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import uuid
from pathlib import Path

import orjson
import pyrage
import pytest
from django.utils import timezone

from rempart.access.policy import AccessDenied
from rempart.audit.context import Actor
from rempart.audit.models import Event
from rempart.directory.models import Establishment, Role
from rempart.exports import marks
from rempart.exports.models import ExportRequest, ExportStatus
from rempart.exports.services import (
    ExportAsk,
    ExportRefused,
    export_decide,
    export_download,
    export_path,
    export_produce,
    export_request,
    exports_purge,
    mark_key,
)
from rempart.patients.models import PatientIdentifier
from rempart.records.actors import actor_for_user
from tests.test_redteam import _staff

ALL = ("ipp", "identite", "ins", "adresse", "telephone", "email", "medecin_traitant")


@pytest.fixture
def people(group):
    here = Establishment.objects.order_by("finess").first()
    return {
        "here": here,
        "secretary": actor_for_user(_staff("sec.export", Role.SECRETARY, here)),
        "dpo": actor_for_user(_staff("dpo.export", Role.DPO, None)),
        "rssi": actor_for_user(_staff("rssi.export", Role.SECURITY_OFFICER, None)),
    }


def _ask(here: Establishment, **changes) -> ExportAsk:
    values = dict(purpose="recall", detail="Rappel vaccinal", establishment_id=here.pk,
                  fields=ALL, format="csv", recipient_kind="age",
                  recipient=str(pyrage.x25519.Identity.generate().to_public()))  # fmt: skip
    values.update(changes)
    return ExportAsk(**values)


def _csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))


def test_an_export_needs_a_second_person_and_is_traceable(people):
    here, secretary, dpo = people["here"], people["secretary"], people["dpo"]
    identity = pyrage.x25519.Identity.generate()
    export = export_request(actor=secretary,
                            ask=_ask(here, recipient=str(identity.to_public())))  # fmt: skip
    # The DPO is told a request waits (names the account and the export, no patient data).
    from rempart.access.models import Alert

    told = Alert.objects.get(kind="export", audience="dpo")
    assert str(export.pk) in told.message and "sec.export" in told.message
    # Nothing leaves before a second person approves; nobody approves their own request.
    with pytest.raises(ExportRefused):
        export_produce(actor=secretary, export_id=export.pk)
    with pytest.raises(AccessDenied):
        export_decide(actor=secretary, export_id=export.pk, approve=True)
    own = export_request(actor=dpo, ask=_ask(here))
    with pytest.raises(ExportRefused):
        export_decide(actor=dpo, export_id=own.pk, approve=True)
    export_decide(actor=dpo, export_id=export.pk, approve=True, note="Campagne validée")
    with pytest.raises(ExportRefused):  # only the one who asked produces
        export_produce(actor=dpo, export_id=export.pk)
    produced = export_produce(actor=secretary, export_id=export.pk)
    assert produced.passphrase is None
    sealed = export_path(export.pk).read_bytes()
    assert export_path(export.pk).stat().st_mode & 0o777 == 0o600
    assert b"nom_naissance" not in sealed  # encrypted to the recipient
    rows = _csv(pyrage.decrypt(sealed, [identity]))
    ipps = dict(
        PatientIdentifier.objects.filter(establishment=here).values_list("ipp", "patient_id")
    )
    real = [r for r in rows if r["ipp"] in ipps]
    assert len(real) == produced.rows == len(ipps)
    assert len(rows) - len(real) == produced.canaries >= 3  # its own canary rows
    # The watermark: each row's notation is the one the export's key gives that patient, and
    # the rows are in the key's order.
    export.refresh_from_db()
    key = mark_key(export.pk, export.mark_key_id)
    agree = seen = 0
    for row in real:
        mark = marks.row_mark(key, ipps[row["ipp"]])
        for text, want in ((row["telephone_portable"], mark.phone_mobile),
                           (row["telephone_fixe"], mark.phone_home),
                           (row["adresse"], mark.street)):  # fmt: skip
            style = (marks.street_style if text is row["adresse"] else marks.phone_style)(text)
            if style is not None:
                seen += 1
                agree += style == want
    assert seen > len(real) and agree == seen
    orders = [marks.row_mark(key, ipps[r["ipp"]]).order for r in real]
    assert orders == sorted(orders)
    # The audit trail says who asked, who approved, which patients and fields.
    done = Event.objects.get(resource_id=str(export.pk), detail__step="produced")
    assert done.username == "sec.export" and done.detail["approved_by"] == "dpo.export"
    assert done.detail["patients_sha256"] == hashlib.sha256(bytes(export.patient_ids)).hexdigest()
    assert done.detail["fields"] == list(ALL) and done.detail["rows"] == len(real)
    assert len(bytes(export.patient_ids)) == 16 * len(real)
    canaries = export.canary_rows["rows"]
    assert {r["nom_naissance"] for r in canaries} <= {r["nom_naissance"] for r in rows}
    # Produced once.
    with pytest.raises(ExportRefused):
        export_produce(actor=secretary, export_id=export.pk)


def test_a_passphrase_export_shows_its_passphrase_once_and_expires(people):
    here, secretary, rssi = people["here"], people["secretary"], people["rssi"]
    export = export_request(actor=secretary, ask=_ask(here, recipient_kind="passphrase",
                                                      recipient="", format="ndjson",
                                                      fields=("ipp", "identite")))  # fmt: skip
    export_decide(actor=rssi, export_id=export.pk, approve=True)
    produced = export_produce(actor=secretary, export_id=export.pk)
    assert produced.passphrase and len(produced.passphrase) == 29
    path = export_download(actor=secretary, export_id=export.pk)
    lines = pyrage.passphrase.decrypt(path.read_bytes(), produced.passphrase).splitlines()
    first = orjson.loads(lines[0])
    assert set(first) == {"ipp", "nom_naissance", "nom_usage", "prenoms", "premier_prenom",
                          "sexe", "date_naissance"}  # fmt: skip
    # The passphrase is nowhere: not in the record, not in the trail.
    export.refresh_from_db()
    stored = f"{vars(export)} {list(Event.objects.values_list('detail', flat=True))}"
    assert produced.passphrase not in stored
    with pytest.raises(AccessDenied):  # only the one who asked downloads
        export_download(actor=rssi, export_id=export.pk)
    later = timezone.now() + dt.timedelta(days=8)
    assert exports_purge(actor=Actor.system("tests"), now=later) == 1
    assert not path.exists()
    assert ExportRequest.objects.get(pk=export.pk).status == ExportStatus.EXPIRED
    with pytest.raises(ExportRefused):
        export_download(actor=secretary, export_id=export.pk)


def test_an_export_request_stays_within_the_askers_establishments(people):
    other = Establishment.objects.exclude(pk=people["here"].pk).first()
    with pytest.raises(AccessDenied):
        export_request(actor=people["secretary"], ask=_ask(other))
    with pytest.raises(ExportRefused):
        export_request(actor=people["secretary"], ask=_ask(people["here"], recipient="age1nope"))
    with pytest.raises(ExportRefused):
        export_request(actor=people["secretary"], ask=_ask(people["here"], detail=" "))
    refused = export_request(actor=people["secretary"], ask=_ask(people["here"]))
    export_decide(actor=people["dpo"], export_id=refused.pk, approve=False, note="Non justifié")
    with pytest.raises(ExportRefused):
        export_produce(actor=people["secretary"], export_id=refused.pk)
    assert not export_path(refused.pk).exists()


def test_an_xlsx_export_reads_back(people):
    from python_calamine import CalamineWorkbook

    identity = pyrage.x25519.Identity.generate()
    export = export_request(actor=people["secretary"], ask=_ask(
        people["here"], format="xlsx", recipient=str(identity.to_public())))  # fmt: skip
    export_decide(actor=people["dpo"], export_id=export.pk, approve=True)
    produced = export_produce(actor=people["secretary"], export_id=export.pk)
    book = CalamineWorkbook.from_filelike(
        io.BytesIO(pyrage.decrypt(produced.path.read_bytes(), [identity])))  # fmt: skip
    sheet = book.get_sheet_by_index(0).to_python()
    assert sheet[0][:2] == ["ipp", "nom_naissance"]
    assert len(sheet) - 1 == produced.rows + produced.canaries
    assert all(isinstance(row[0], str) and len(row[0]) == 10 for row in sheet[1:])  # 0-led IPPs


def test_marks_write_and_read_the_same_notations():
    for style in range(4):
        assert marks.phone_style(marks.phone_written("06 12 34 56 78", style)) == style
        assert marks.phone_style(marks.phone_written("+33612345678", style)) == style
    assert marks.phone_written("+44 20 7946 0958", 2) == "+44 20 7946 0958"  # abroad: as is
    assert marks.street_written("12 avenue Gabriel Péri", 1) == "12 av. Gabriel Péri"
    assert marks.street_written("12 AV. GABRIEL PERI", 0) == "12 AVENUE GABRIEL PERI"
    assert marks.street_written("3 bis Allée des Lilas", 1) == "3 bis All. des Lilas"
    assert marks.street_written("12 rue de la Place", 1) == "12 rue de la Place"
    assert marks.street_style("12 rue de la Place") is None
    assert marks.town_written("SAINT-DENIS", 1) == "ST-DENIS"
    assert marks.town_written("ST-MAUR-DES-FOSSES", 0) == "SAINT-MAUR-DES-FOSSES"
    assert marks.saint_style("ST-DENIS") == 1 and marks.saint_style("PARIS") is None
    key = b"k" * 16
    spread = {marks.row_mark(key, uuid.uuid4()).phone_mobile for _ in range(200)}
    assert spread == {0, 1, 2, 3}


def test_the_console_asks_approves_and_produces_under_named_accounts(console, tmp_path):
    """`rempart export`: the two-person rule holds between the accounts typed at the console."""
    import subprocess

    console.run("migrate", "-v0")
    console.run("generate", "--patients", "300", "--establishments", "3", "--seed", "5")
    env = console.env
    script = ("from rempart.directory.models import Role, Establishment; "
              "from rempart.records.services.directory import staff_create; "
              "e = Establishment.objects.order_by('finess').first(); "
              "staff_create(username='sec.console', password='x' * 16, role=Role.SECRETARY, "
              "establishments=[e]); "
              "staff_create(username='dpo.console', password='x' * 16, role=Role.DPO, "
              "establishments=[]); print(e.finess)")  # fmt: skip
    finess = subprocess.run(console.command("shell", "-c", script), env=env, text=True,  # noqa: S603
                            capture_output=True, check=True).stdout.split()[-1]  # fmt: skip
    asked = console.run("export", "request", "--as", "sec.console", "--establishment", finess,
                        "--purpose", "recall", "--detail", "Rappel", "--fields", "ipp,identite",
                        "--passphrase").stdout  # fmt: skip
    export_id = asked.split()[1]
    decide_own = console.command("export", "decide", export_id, "--as", "sec.console", "--approve")
    own = subprocess.run(decide_own, env=env, capture_output=True, text=True)  # noqa: S603
    assert own.returncode != 0 and "pas le droit" in own.stderr
    console.run("export", "decide", export_id, "--as", "dpo.console", "--approve")
    out = console.run("export", "produce", export_id, "--as", "sec.console").stdout
    passphrase = out.split("une seule fois) : ")[1].strip()
    path = out.split("chiffrés dans ")[1].split(" ;")[0]
    sealed = Path(path).read_bytes()
    plain = pyrage.passphrase.decrypt(sealed, passphrase).decode("utf-8-sig")
    assert plain.startswith("ipp;nom_naissance")
    listed = console.run("export", "list").stdout
    assert export_id in listed and "sec.console / dpo.console" in listed


def test_an_export_by_service_takes_the_patients_who_stayed_there_since_the_date(people):
    from rempart.care.models import Stay

    here = people["here"]
    stays = Stay.objects.filter(establishment=here, cancelled_at=None).order_by("planned_admission")
    service = stays.last().service
    since = stays.filter(service=service).order_by("planned_admission")[
        stays.filter(service=service).count() // 2].planned_admission.date()  # fmt: skip
    expected = set(Stay.objects.filter(service=service, cancelled_at=None,
                                       planned_admission__date__gte=since)
                   .values_list("patient_id", flat=True))  # fmt: skip
    identity = pyrage.x25519.Identity.generate()
    export = export_request(actor=people["secretary"], ask=_ask(
        here, service_id=service.pk, stays_since=since, fields=("ipp",),
        recipient=str(identity.to_public())))  # fmt: skip
    export_decide(actor=people["dpo"], export_id=export.pk, approve=True)
    produced = export_produce(actor=people["secretary"], export_id=export.pk)
    export.refresh_from_db()
    ids = bytes(export.patient_ids)
    exported = {uuid.UUID(bytes=ids[i : i + 16]) for i in range(0, len(ids), 16)}
    assert exported == expected and 0 < produced.rows < PatientIdentifier.objects.filter(
        establishment=here).count()  # fmt: skip
    rows = _csv(pyrage.decrypt(produced.path.read_bytes(), [identity]))
    assert len(rows) == produced.rows + produced.canaries and list(rows[0]) == ["ipp"]


def test_a_thief_with_the_dump_and_a_leaked_export_cannot_strip_its_canary_rows(people):
    """The attack: the database dump (IPPs and export records in clear) next to a leaked file.
    A canary row whose IPP no patient holds, or a file row whose patient is missing from the
    export's list of ids, would name the canary rows; then the file could be resold clean."""
    from django.db import connection

    from rempart.access.canaries import canaries_plant

    canaries_plant(actor=Actor.system("tests"), per_establishment=4, reorder=False)
    identity = pyrage.x25519.Identity.generate()
    export = export_request(actor=people["secretary"], ask=_ask(
        people["here"], recipient=str(identity.to_public())))  # fmt: skip
    export_decide(actor=people["dpo"], export_id=export.pk, approve=True)
    produced = export_produce(actor=people["secretary"], export_id=export.pk)
    rows = _csv(pyrage.decrypt(produced.path.read_bytes(), [identity]))
    with connection.cursor() as cursor:  # what the dump shows, read raw
        cursor.execute("SELECT ipp FROM patients_patientidentifier WHERE establishment_id = %s",
                       [people["here"].pk])  # fmt: skip
        held = {r[0] for r in cursor.fetchall()}
        cursor.execute("SELECT patient_ids FROM exports_exportrequest WHERE id = %s", [export.pk])
        stored = bytes(cursor.fetchone()[0])
    unheld = [r for r in rows if r["ipp"] not in held]
    assert unheld == []  # every row's IPP is held by some patient: none stands out
    exported = PatientIdentifier.objects.filter(establishment=people["here"]).values_list(
        "patient_id", flat=True)  # fmt: skip
    assert not any(pid.bytes in stored for pid in exported)  # the list of ids is sealed
    assert len({r["ipp"] for r in rows}) == len(rows)  # no IPP twice in the file
