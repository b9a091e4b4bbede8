"""The leak analyser against samples made as attackers make them: from an export (shuffled,
renamed, cut down, re-encoded), from a direct read of the database, from invented people, mixed
with typos, in CSV, JSON, XLSX or plain text. Each is told apart and attributed right, and the
report names no patient."""

from __future__ import annotations

import csv
import io
import json
import random

import orjson
import pyrage
import pytest

from rempart.audit.context import Actor
from rempart.audit.models import Event
from rempart.breach.models import BreachAnalysis, LeakedPatient
from rempart.breach.readers import SampleError, read_sample
from rempart.breach.services import breach_analyse
from rempart.exports.services import export_decide, export_produce, export_request
from rempart.patients.models import Patient, PatientIdentifier
from rempart.synth.population import canary_identities
from tests.test_exports import _ask, _csv, people  # noqa: F401  # the fixture

CONSOLE = Actor.system("tests")


def _export_rows(people, **ask) -> tuple[object, list[dict[str, str]]]:  # noqa: F811
    identity = pyrage.x25519.Identity.generate()
    export = export_request(actor=people["secretary"], ask=_ask(
        people["here"], recipient=str(identity.to_public()), **ask))  # fmt: skip
    export_decide(actor=people["dpo"], export_id=export.pk, approve=True)
    produced = export_produce(actor=people["secretary"], export_id=export.pk)
    return export, _csv(pyrage.decrypt(produced.path.read_bytes(), [identity]))


def _db_rows(count: int) -> list[dict[str, str]]:
    """What a thief reading the database with the keys would write: the stored values."""
    out = []
    for p in Patient.objects.order_by("id")[:count]:
        out.append({"nom": p.birth_name or "", "prenom": p.first_given_name or "",
                    "ddn": p.birth_date.strftime("%d/%m/%Y") if p.birth_date else "",
                    "tel": p.phone_mobile or "", "mail": p.email or "",
                    "cp": p.postcode or "", "ville": p.city or ""})  # fmt: skip
    return out


def _invented(count: int, seed: int) -> list[dict[str, str]]:
    return [{"nom": d.birth_name, "prenom": d.first_given_name,
             "ddn": d.birth_date.strftime("%d/%m/%Y"), "tel": d.phone_mobile, "mail": d.email,
             "cp": d.postcode, "ville": d.city}
            for d in canary_identities(count=count, seed=seed)]  # fmt: skip


def _to_csv(rows: list[dict[str, str]], delimiter: str = ";", header: bool = True) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    if header:
        writer.writerow(rows[0].keys())
    writer.writerows([r.values() for r in rows])
    return out.getvalue().encode()


def test_a_sample_from_an_export_is_traced_to_it(people):  # noqa: F811
    export, rows = _export_rows(people)
    other, _ = _export_rows(people)  # the same patients, another export
    # As posted: a few hundred rows, shuffled, columns renamed in English, one dropped, JSON.
    random.Random(4).shuffle(rows)
    english = {"nom_naissance": "last_name", "prenoms": "first_names", "date_naissance": "dob",
               "telephone_portable": "mobile", "telephone_fixe": "home_phone", "email": "mail",
               "adresse": "street", "code_postal": "zip", "ville": "city"}  # fmt: skip
    posted = [{english.get(k, k): v for k, v in r.items() if k != "nom_usage"} for r in rows[:150]]
    data = orjson.dumps({"leak": posted})
    analysis = breach_analyse(actor=CONSOLE, data=data, file_name="dump_clinique.json")
    report = analysis.report
    assert report["matches"]["exact"] + report["matches"]["partial"] >= 140
    assert report["nature"] == "authentique"
    source = report["source"]
    assert source["verdict"] == "export"
    assert source["exports"][0]["id"] == str(export.pk) and source["exports"][0]["attributed"]
    assert source["exports"][0]["requested_by"] == "sec.export"
    assert source["exports"][0]["approved_by"] == "dpo.export"
    assert not any(e["attributed"] for e in source["exports"] if e["id"] == str(other.pk))
    assert report["establishments"][0]["finess"] == people["here"].finess
    assert {"identite", "date_naissance", "telephone", "email", "adresse"} <= set(
        report["categories"])  # fmt: skip
    # Matched patients kept for the letters, with what leaked for each; the run is audited.
    leaked = {p.patient_id: p for p in LeakedPatient.objects.filter(analysis=analysis)}
    assert len(leaked) == report["matches"]["patients"]
    by_ipp = dict(PatientIdentifier.objects.filter(establishment=people["here"])
                  .values_list("ipp", "patient_id"))  # fmt: skip
    for row in posted:  # each patient's own categories: a phone only where the row had one
        mine = leaked.get(by_ipp.get(row["ipp"]))
        if mine is not None:
            has_phone = bool(row["mobile"] or row["home_phone"])
            assert ("telephone" in mine.categories) == has_phone
            assert ("email" in mine.categories) == bool(row["mail"])
    assert Event.objects.filter(action="breach", resource_id=str(analysis.pk)).exists()
    # The report holds counts and names of staff, never a patient's values.
    text = json.dumps(report, ensure_ascii=False)
    assert not any(r["last_name"] in text or (r["mail"] and r["mail"] in text) for r in posted)


def test_a_sample_whose_formatting_was_normalised_is_traced_by_its_canary_rows(people):  # noqa: F811
    export, rows = _export_rows(people)
    export.refresh_from_db()
    canaries = export.canary_rows["rows"]
    planted = {(c["nom_naissance"], c["date_naissance"], c["prenoms"]) for c in canaries}

    def is_canary(r: dict[str, str]) -> bool:
        return (r["nom_naissance"], r["date_naissance"], r["prenoms"]) in planted

    # Phones written as digits, addresses and towns gone: the watermark is gone; the rows
    # keep a canary.
    posted = [r for r in rows if is_canary(r)][:1] + [r for r in rows if not is_canary(r)][:60]
    for r in posted:
        r["telephone_portable"] = "".join(c for c in r["telephone_portable"] if c.isdigit())
        r["adresse"], r["ville"] = "", ""
    random.Random(2).shuffle(posted)
    analysis = breach_analyse(actor=CONSOLE, data=_to_csv(posted, ","), file_name="x.csv")
    first = analysis.report["source"]["exports"][0]
    assert first["id"] == str(export.pk) and first["canary_rows_found"] == 1 and first["attributed"]


def test_a_sample_read_from_the_database_is_not_blamed_on_an_export(people):  # noqa: F811
    export, _ = _export_rows(people)  # an export of the same patients exists
    here = set(PatientIdentifier.objects.filter(establishment=people["here"])
               .values_list("patient_id", flat=True))  # fmt: skip
    rows = [r for p, r in zip(Patient.objects.order_by("id"), _db_rows(10**6), strict=False)
            if p.pk in here][:200]  # fmt: skip
    analysis = breach_analyse(actor=CONSOLE, data=_to_csv(rows, header=False),
                              file_name="base.csv")  # fmt: skip
    report = analysis.report
    assert report["matches"]["exact"] >= 190 and report["nature"] == "authentique"
    assert report["source"]["verdict"] == "hors_export"
    listed = {e["id"]: e for e in report["source"]["exports"]}
    assert not listed[str(export.pk)]["attributed"]
    assert listed[str(export.pk)]["log_likelihood"] < 0


def test_an_invented_sample_is_called_invented(group):
    analysis = breach_analyse(actor=CONSOLE, data=_to_csv(_invented(300, seed=777)),
                              file_name="fake.csv")  # fmt: skip
    report = analysis.report
    assert report["matches"]["exact"] == 0 and report["matches"]["partial"] <= 3
    assert report["nature"] == "inventé ou d'une autre source"
    assert report["source"]["verdict"] in ("aucune", "hors_export")


def test_a_mixed_sample_with_typos_is_a_mix_with_partial_matches(group):
    real = _db_rows(150)
    for r in real[:30]:  # a typo in the name, the phone and e-mail still theirs
        r["nom"] = r["nom"][:-1] + ("E" if r["nom"][-1] != "E" else "A")
    for r in real[30:60]:  # moved: another postcode and town
        r["cp"], r["ville"] = "13001", "MARSEILLE"
    rows = real + _invented(150, seed=778)
    random.Random(1).shuffle(rows)
    analysis = breach_analyse(actor=CONSOLE, data=_to_csv(rows, "\t"), file_name="mix.tsv")
    matches = analysis.report["matches"]
    assert analysis.report["nature"] == "mélange"
    assert 140 <= matches["exact"] + matches["partial"] <= 155
    assert matches["partial"] >= 25


@pytest.mark.parametrize("layout", ["xlsx", "text", "text-town-first", "cp1252", "mojibake"])
def test_samples_in_every_shape_are_read(group, layout):
    import xlsxwriter

    rows = _db_rows(80)
    if layout == "xlsx":
        buffer = io.BytesIO()
        book = xlsxwriter.Workbook(buffer, {"in_memory": True})
        sheet = book.add_worksheet()
        for i, row in enumerate([list(rows[0]), *[list(r.values()) for r in rows]]):
            sheet.write_row(i, 0, row)
        book.close()
        data = buffer.getvalue()
    elif layout == "text":
        data = "\n".join(f"{r['nom']} {r['prenom']} né le {r['ddn']} tél. {r['tel']}"
                         for r in rows).encode()  # fmt: skip
    elif layout == "text-town-first":  # the name after several words, in capitals
        data = "\n".join(f"Patient domicilié {r['cp']} {r['ville']} né le {r['ddn']} "
                         f"{r['nom'].upper()} {r['prenom']}" for r in rows).encode()  # fmt: skip
    elif layout == "cp1252":
        data = _to_csv(rows).decode().encode("cp1252", errors="replace")
    else:
        data = _to_csv(rows).decode().encode("utf-8").decode("cp1252", errors="replace").encode()
    report = breach_analyse(actor=CONSOLE, data=data, file_name=f"s.{layout}").report
    assert report["matches"]["exact"] + report["matches"]["partial"] >= 75, report["matches"]


@pytest.mark.parametrize("data", [b"", b"   \n", b"%PDF-1.7 binary", b"\x00\x01\x02\x00\x00\x00zz",
                                  b"PK\x03\x04 not a workbook"])  # fmt: skip
def test_bad_files_get_a_clear_error_and_store_nothing(group, data):
    with pytest.raises(SampleError):
        breach_analyse(actor=CONSOLE, data=data, file_name="bad")
    assert not BreachAnalysis.objects.exists()


def test_only_the_dpo_and_the_security_officer_analyse(people):  # noqa: F811
    from rempart.access.policy import AccessDenied

    with pytest.raises(AccessDenied):
        breach_analyse(actor=people["secretary"], data=b"a;b\n1;2\n", file_name="x.csv")
    read_sample(b"a;b\n1;2\n")  # a fine file, for the DPO


def test_the_report_reads_as_html_and_pdf_with_its_charts(people):  # noqa: F811
    from rempart.breach.report import report_html, report_pdf, summary_lines

    export, rows = _export_rows(people)
    analysis = breach_analyse(actor=CONSOLE, data=_to_csv(rows[:80]), file_name="x.csv")
    html = report_html(analysis.report)
    assert html.count("<svg") == 4 and "Correspondances" in html and str(export.pk) in html
    assert not any(r["nom_naissance"] in html for r in rows[:80])
    pdf = report_pdf(analysis.report)
    assert pdf.startswith(b"%PDF") and len(pdf) > 2000
    assert any("Issu de l'export" in line for line in summary_lines(analysis.report))


def test_the_command_writes_its_reports_and_refuses_a_bad_file(console, tmp_path):
    import subprocess

    console.run("migrate", "-v0")
    sample = tmp_path / "fuite.csv"
    sample.write_bytes(_to_csv(_invented(50, seed=9)))
    outputs = [f"--{kind}={tmp_path / ('r.' + kind)}" for kind in ("json", "html", "pdf")]
    out = console.run("breach", "analyse", str(sample), *outputs)
    assert "50 lignes" in out.stdout and "Analyse" in out.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["matches"]["none"] == 50 and report["source"]["verdict"] == "aucune"
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    assert (tmp_path / "r.html").stat().st_mode & 0o777 == 0o600
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.7 not a sample")
    refused = subprocess.run(console.command("breach", "analyse", str(bad)), env=console.env,  # noqa: S603
                             capture_output=True, text=True)  # fmt: skip
    assert refused.returncode != 0 and "rien n'a été enregistré" in refused.stderr


def test_columns_read_in_parallel_give_the_codes_read_in_one_process(group):
    """A big sample's columns are shared among forked workers: the same codes, vocabularies,
    notations and categories as read in one process (two phone columns and a usage name make
    fields that several columns fill, which must stay in one worker)."""
    from rempart.breach.columns import column_kinds
    from rempart.breach.traits import F, table_traits

    drawn = _invented(300, seed=5)
    rows = [[p["nom"], p["prenom"], p["ddn"], p["tel"], p["mail"], p["cp"], p["ville"],
             p["nom"] + "-X" if i % 3 else "", "01 45 67 89 " + f"{i % 100:02d}"]
            for i, p in enumerate(drawn)]  # fmt: skip
    header = ["nom", "prenom", "ddn", "tel", "mail", "cp", "ville", "nom_usage", "tel_fixe"]
    kinds = column_kinds(header, rows)
    assert kinds.count("phone") == 2 and "usage" in kinds
    alone = table_traits(rows, kinds)
    shared = table_traits(rows, kinds, workers=2, parallel_from=0)
    _same_traits(alone, shared)
    # both phone columns kept: the second one in the slot after the first
    assert (alone.codes[F.PHONE] >= 0).sum() == len(rows) + sum(1 for p in drawn if p["tel"])
    # A cell holding the character the columns are handed over with: read in one process.
    rows[7][0] = "DU\x00PONT"
    _same_traits(table_traits(rows, kinds), table_traits(rows, kinds, workers=2,
                                                         parallel_from=0))  # fmt: skip


def _same_traits(alone, shared) -> None:
    from rempart.breach.traits import F

    for field in F.ALL:
        assert (alone.codes[field] == shared.codes[field]).all(), field
        if field in alone.vocab:
            assert alone.vocab[field].values == shared.vocab[field].values
    for field, styles in alone.styles.items():
        assert (styles == shared.styles[field]).all()
    assert (alone.categories == shared.categories).all()
    assert (alone.present == shared.present).all()
