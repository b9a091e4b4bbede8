"""The breach file: the 72-hour clock, facts sealed, analyses attached, decisions journaled and
audited, and the drafts written from the analysis with the right numbers and categories; each
patient's letter names only what leaked of theirs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from rempart.access.policy import AccessDenied
from rempart.audit.models import Event
from rempart.breach import drafts, notify
from rempart.breach.models import BreachFile, BreachStep, LeakedPatient
from rempart.breach.services import breach_analyse
from tests.test_breach import CONSOLE, _db_rows, _invented, _to_csv
from tests.test_exports import people  # noqa: F401  # the fixture


@pytest.fixture
def analysed(people):  # noqa: F811
    """A sample: 120 patients as stored (a third without e-mail, a quarter without phone) and 40
    invented people."""
    rows = _db_rows(120)
    for i, row in enumerate(rows):
        if i % 3 == 0:
            row["mail"] = ""
        if i % 4 == 0:
            row["tel"] = ""
    analysis = breach_analyse(actor=CONSOLE, data=_to_csv(rows + _invented(40, seed=3)),
                              file_name="vente.csv")  # fmt: skip
    return analysis, rows


def test_the_file_runs_the_72_hour_clock_and_journals_every_step(people, analysed):  # noqa: F811
    dpo, analysis = people["dpo"], analysed[0]
    aware = timezone.now() - dt.timedelta(hours=70)
    breach = notify.breach_open(actor=dpo, aware_at=aware, facts="Annonce vue sur un forum",
                                analysis_ids=(analysis.pk,))  # fmt: skip
    assert breach.deadline == aware + dt.timedelta(hours=72)
    assert notify.clock(breach)["state"] == "urgent"  # under 12 hours left
    assert notify.clock(breach, now=aware + dt.timedelta(hours=75))["text"] == (
        "notification CNIL en retard de 3 h 00"
    )
    notify.breach_decide(actor=people["rssi"], breach_id=breach.pk,
                         wording="Réinitialiser les mots de passe des comptes cités")  # fmt: skip
    notify.breach_mark(actor=dpo, breach_id=breach.pk, what="cnil")
    breach.refresh_from_db()
    assert breach.status == "notified" and notify.clock(breach)["state"] == "notified"
    kinds = list(BreachStep.objects.filter(breach=breach).values_list("kind", "username"))
    assert kinds == [("opened", "dpo.export"), ("analysis", "dpo.export"),
                     ("decision", "rssi.export"), ("cnil", "dpo.export")]  # fmt: skip
    assert Event.objects.filter(action="breach", resource_type="BreachFile",
                                resource_id=str(breach.pk)).count() == 4  # fmt: skip
    # What people typed is sealed: neither the facts nor the decision are in the tables.
    with connection.cursor() as cursor:
        for table in ("breach_breachfile", "breach_breachstep"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608
            dump = repr(cursor.fetchall())
            assert "forum" not in dump and "mots de passe" not in dump


def test_only_the_dpo_and_the_security_officer_handle_a_file(people):  # noqa: F811
    with pytest.raises(AccessDenied):
        notify.breach_open(actor=people["secretary"], aware_at=timezone.now())
    with pytest.raises(notify.BreachRefused):  # a clock that would start late
        notify.breach_open(actor=people["dpo"], aware_at=timezone.now() + dt.timedelta(days=1))


def test_the_drafts_carry_the_analysis_numbers_and_categories(people, analysed):  # noqa: F811
    dpo, (analysis, rows) = people["dpo"], analysed
    breach = notify.breach_open(actor=dpo, aware_at=timezone.now() - dt.timedelta(hours=2),
                                analysis_ids=(analysis.pk,))  # fmt: skip
    notify.breach_notes(actor=dpo, breach_id=breach.pk, dpo_contact="dpo@groupe.example")
    report = analysis.report
    people_count = LeakedPatient.objects.filter(analysis=analysis).count()
    assert people_count == report["matches"]["patients"] == len(rows)
    with_mail = sum(1 for lp in LeakedPatient.objects.filter(analysis=analysis)
                    if "email" in lp.categories)  # fmt: skip
    cnil = notify.draft_generate(actor=dpo, breach_id=breach.pk, kind="cnil").text
    assert f"{people_count} personne(s)" in cnil
    assert f"Adresse électronique : {with_mail} personne(s)" in cnil
    assert with_mail == sum(1 for r in rows if r["mail"])  # the rows that showed one
    assert "Téléphone" in cnil and "dpo@groupe.example" in cnil
    assert "NE S'APPLIQUE PAS" in cnil  # values in clear: encryption exempts nobody
    ars = notify.draft_generate(actor=dpo, breach_id=breach.pk, kind="ars").text
    assert "L1111-8-2" in ars and people["here"].name in ars
    letter = notify.draft_generate(actor=dpo, breach_id=breach.pk, kind="letter").text
    for text in (cnil, ars, letter):  # no patient's value in a draft
        assert not any(r["nom"] and r["nom"] in text for r in rows)
    # Each patient's letter: their own categories only.
    leaked = {lp.patient_id: lp.categories for lp in LeakedPatient.objects.filter(
        analysis=analysis)}  # fmt: skip
    without_mail = next(c for c in leaked.values() if "email" not in c)
    with_both = next(c for c in leaked.values() if {"email", "telephone"} <= set(c))
    mine = drafts.merge(letter, "Mme TEST", without_mail)
    assert "hameçonnage" not in mine and "signal-spam" not in mine
    assert "Mme TEST" in mine and "[[" not in mine
    theirs = drafts.merge(letter, "M. TEST", with_both)
    assert "hameçonnage" in theirs and "33700" in theirs
    # The DPO edits the letter, but keeps the per-patient repères.
    with pytest.raises(notify.BreachRefused):
        notify.draft_edit(actor=dpo, breach_id=breach.pk, kind="letter",
                          text=letter.replace("[[CONSEILS]]", ""))  # fmt: skip
    edited = notify.draft_edit(actor=dpo, breach_id=breach.pk, kind="letter",
                               text=letter.replace("Madame, Monsieur,", "Chère patiente, cher "
                                                   "patient,"))  # fmt: skip
    assert edited.edited_by == "dpo.export"
    assert BreachFile.objects.get(pk=breach.pk).drafts.count() == 3


def test_the_dpo_runs_a_file_through_the_pages(group):
    """From a posted sample to the drafts, through the pages: the clock on every page of the
    DPO, the drafts as text and PDF, an edited letter kept; a secretary never gets in."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from rempart.breach.models import BreachAnalysis, BreachDraft
    from rempart.directory.models import Role
    from tests.test_breach_pages import _client

    dpo = _client("dpo.violation", Role.DPO, None)
    dpo.post("/fuites/", {"sample": SimpleUploadedFile("vente.csv", _to_csv(_db_rows(50)))})
    analysis = BreachAnalysis.objects.get()
    aware = timezone.localtime() - dt.timedelta(hours=3)
    opened = dpo.post("/violations/", {"aware_at": aware.strftime("%Y-%m-%dT%H:%M"),
                                       "title": "Fuite annoncée sur un forum",
                                       "analysis": str(analysis.pk)})  # fmt: skip
    assert opened.status_code == 302
    breach = BreachFile.objects.get()
    home = dpo.get("/").content.decode()
    assert "Fuite annoncée sur un forum" in home and "notification CNIL due dans 6" in home
    page = f"/violations/{breach.pk}/"
    dpo.post(page, {"action": "notes", "title": "Fuite annoncée sur un forum",
                    "dpo_contact": "dpo@groupe.example", "facts": "Vu le 3 décembre"})  # fmt: skip
    for kind in ("cnil", "ars", "letter"):
        assert dpo.post(page, {"action": "generate", "kind": kind}).status_code == 302
    text = dpo.get(f"{page}brouillon/cnil.txt").content.decode()
    assert "50 personne(s)" in text and "dpo@groupe.example" in text
    pdf = dpo.get(f"{page}brouillon/ars.pdf")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    letter = BreachDraft.objects.get(kind="letter").text
    dpo.post(f"{page}brouillon/letter/", {"text": letter.replace("Madame, Monsieur,",
                                                                "Chère patiente,")})  # fmt: skip
    assert "Chère patiente," in BreachDraft.objects.get(kind="letter").text
    refused = dpo.post(f"{page}brouillon/letter/", {"text": "Bonjour"}).content.decode()
    assert "[[DONNEES]]" in refused  # the repères must stay
    dpo.post(page, {"action": "letters"})
    assert "lettres-001.pdf" in dpo.get(page).content.decode()
    letters = dpo.get(f"{page}lettres/lettres-001.pdf")
    assert letters["Content-Type"] == "application/pdf"
    assert b"".join(letters.streaming_content).startswith(b"%PDF")
    assert dpo.get(f"{page}lettres/autre.pdf").status_code == 403
    from tests.test_pages_a11y import Fields

    for url in ("/violations/", page, f"{page}brouillon/letter/"):
        parsed = Fields()
        parsed.feed(dpo.get(url).content.decode())
        assert parsed.lang == "fr" and parsed.h1 == 1 and parsed.unlabelled() == [], url
    dpo.post(page, {"action": "cnil"})
    assert "CNIL notifiée" in dpo.get(page).content.decode()
    assert "notification CNIL due" not in dpo.get("/").content.decode()
    secretary = _client("sec.violation", Role.SECRETARY, people_place())
    assert secretary.get("/violations/").status_code == 403
    assert secretary.get(f"{page}brouillon/cnil.txt").status_code == 403


def people_place():
    from rempart.directory.models import Establishment

    return Establishment.objects.order_by("finess").first()


def _streams(pdf: bytes) -> list[bytes]:
    """A PDF's content streams, inflated. fpdf2 writes "stream\\n", the data, "\\nendstream":
    a stream whose deflated bytes happen to end in a carriage return must keep it (an optional
    "\\r" before "\\nendstream" took it, one stream in 256)."""
    import re
    import zlib

    return [
        zlib.decompress(m.group(1)) for m in re.finditer(rb"stream\n(.*?)\nendstream", pdf, re.S)
    ]


def test_the_letters_go_out_each_naming_only_its_patients_data(people, analysed, settings):  # noqa: F811
    import stat

    from rempart.breach.letters import letters_produce
    from rempart.patients.models import Patient

    settings.REMPART_LETTER_FONT = ""  # the core font: the names stay readable in the streams
    dpo, (analysis, _rows) = people["dpo"], analysed
    breach = notify.breach_open(actor=dpo, aware_at=timezone.now(), analysis_ids=(analysis.pk,))
    with pytest.raises(notify.BreachRefused):  # the letter's draft comes first
        letters_produce(actor=dpo, breach_id=breach.pk)
    notify.draft_generate(actor=dpo, breach_id=breach.pk, kind="letter")
    made = letters_produce(actor=dpo, breach_id=breach.pk)
    leaked = {lp.patient_id: lp.categories for lp in LeakedPatient.objects.filter(
        analysis=analysis)}  # fmt: skip
    assert made.letters + made.without_address == len(leaked) and made.letters >= 100
    assert len(made.paths) == 1 and stat.S_IMODE(made.paths[0].stat().st_mode) == 0o600
    raw = made.paths[0].read_bytes()
    pages = [stream.decode("latin-1") for stream in _streams(raw)]
    pages = [p for p in pages if " Tj" in p]
    assert len(pages) >= made.letters
    text = "\n".join(pages)
    checked = 0
    for patient in Patient.objects.filter(pk__in=list(leaked))[:12]:
        family = (patient.usage_name or patient.birth_name).upper()
        mine = next((p for p in pages if f"{patient.first_given_name} {family}" in p), None)
        if mine is None:
            continue  # no postal address
        checked += 1
        assert ("hame\xe7onnage" in mine) == ("email" in leaked[patient.pk])
        assert ("33700" in mine) == ("telephone" in leaked[patient.pk])
    assert checked >= 8
    assert "[[" not in text
    event = Event.objects.get(action="export", resource_type="BreachLetters")
    assert event.detail["letters"] == made.letters and "patients_sha256" in event.detail
    # Names and addresses are not kept past the file: closing it destroys the letters.
    notify.breach_mark(actor=dpo, breach_id=breach.pk, what="closed")
    assert not made.paths[0].exists()


class RefusingBackend:
    """A mail server that refuses every recipient (a bounce)."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def send_messages(self, messages) -> int:
        import smtplib

        raise smtplib.SMTPRecipientsRefused({m.to[0]: (550, b"unknown") for m in messages})


def test_emails_queued_paced_resumed_bounces_kept(people, analysed, settings):  # noqa: F811
    from django.core import mail

    from rempart.breach.models import OutboxMessage
    from rempart.breach.outbox import outbox_fill, outbox_send
    from rempart.patients.models import Patient

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    dpo, (analysis, _rows) = people["dpo"], analysed
    breach = notify.breach_open(actor=dpo, aware_at=timezone.now(), analysis_ids=(analysis.pk,))
    notify.draft_generate(actor=dpo, breach_id=breach.pk, kind="email")
    leaked = {lp.patient_id: lp.categories for lp in LeakedPatient.objects.filter(
        analysis=analysis)}  # fmt: skip
    addresses = {p.pk: p.email for p in Patient.objects.filter(pk__in=list(leaked)) if p.email}
    assert outbox_fill(actor=dpo, breach_id=breach.pk) == len(addresses) >= 50
    assert outbox_fill(actor=dpo, breach_id=breach.pk) == 0  # once per patient
    paused: list[float] = []
    first = outbox_send(breach_id=breach.pk, per_minute=600, limit=5, sleep=paused.append)
    assert first.sent == 5 and len(mail.outbox) == 5 and paused  # paced
    rest = outbox_send(breach_id=breach.pk, per_minute=100_000, sleep=lambda _s: None)
    assert rest.sent == len(addresses) - 5 and len(mail.outbox) == len(addresses)
    sent_to = [m.to[0] for m in mail.outbox]
    assert sorted(sent_to) == sorted(addresses.values())  # each once, none twice
    by_address = {a: pid for pid, a in addresses.items()}
    for message in mail.outbox[:10]:
        mine = leaked[by_address[message.to[0]]]
        assert ("hameçonnage" in message.body) == ("email" in mine)
        assert "http" not in message.body and "[[" not in message.body
    # A bounce: recorded by the server's code, the address never written in clear.
    OutboxMessage.objects.filter(breach=breach).update(status="queued")
    settings.EMAIL_BACKEND = "tests.test_breach_file.RefusingBackend"
    bounced = outbox_send(breach_id=breach.pk, limit=3, sleep=lambda _s: None)
    assert bounced.bounced == 3
    errors = OutboxMessage.objects.filter(status="bounced").values_list("last_error", flat=True)
    assert set(errors) == {"SMTP 550"}
    # The outbox page: the counts, the bounces with the server's code, no address.
    from rempart.directory.models import Role
    from tests.test_breach_pages import _client

    page = _client("dpo.courriels", Role.DPO, None).get(f"/violations/{breach.pk}/courriels/")
    html = page.content.decode()
    assert "SMTP 550" in html and "Refusé par le serveur du destinataire" in html
    assert not any(a in html for a in addresses.values())
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM breach_outboxmessage")
        dump = repr(cursor.fetchall())
    assert not any(a in dump for a in addresses.values())


def test_the_send_command_reports_what_it_did(console):
    """`rempart breach send` with nothing queued: says so, sends nothing (the demo posture's
    mail backend is the console)."""
    console.run("migrate", "-v0")
    done = console.run("breach", "send", "--limit", "10")
    assert "Envoyés : 0 ; refusés : 0 ; à réessayer : 0 ; abandonnés : 0." in done.stdout


def test_names_beyond_latin_1_are_written_in_a_unicode_font(settings):
    """Łucja Nguyễn gets her name on the envelope: the recipient block in the TrueType font
    (embedded), the body in the core font; without the font, Latin-1 and "?"."""
    from pathlib import Path

    from rempart.breach.letters import _Letterhead

    font = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if not font.is_file():
        pytest.skip("Debian's fonts-dejavu-core is not installed")
    settings.REMPART_LETTER_FONT = str(font)
    pdf = _Letterhead("[[DESTINATAIRE]]\nMadame,\n[[DONNEES]]\n[[CONSEILS]]")
    pdf.letter("Madame Łucja NGUYỄN", ["3 rue Ödön", "75011 PARIS"], frozenset({"email"}))
    body = bytes(pdf.output())
    assert b"/FontFile2" in body and b"DejaVuSans" in body
    settings.REMPART_LETTER_FONT = ""
    plain = _Letterhead("[[DESTINATAIRE]]\n[[DONNEES]]\n[[CONSEILS]]")
    plain.letter("Madame Łucja NGUYỄN", ["3 rue Ödön", "75011 PARIS"], frozenset({"email"}))
    raw = bytes(plain.output())
    streams = b"".join(_streams(raw))
    assert b"(Madame ?ucja NGUY?N)" in streams and b"/FontFile2" not in raw
