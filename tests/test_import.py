"""Legacy import: validated rows in, refused rows listed, duplicates flagged, nothing twice."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest

from rempart.audit.context import Actor
from rempart.directory.models import Establishment, Practitioner
from rempart.imports.models import ImportJob
from rempart.imports.services import import_file
from rempart.imports.sources import SourceError
from rempart.patients.models import DuplicateCandidate, Patient, PatientIdentifier
from rempart.records.selectors.patients import patients_find_by_nir
from rempart.synth.legacy import write_legacy_export

ACTOR = Actor.system("tests")  # the console: access control is tested in test_access.py

TODAY = dt.date(2026, 11, 28)
REASON_OF_FAULT = {  # refused lines: no usable identity
    "future_birth": "birth_date: La date de naissance est dans le futur.",
    "no_name": "birth_name: Le nom de naissance est obligatoire.",
    "bad_date": "birth_date: Date de naissance illisible.",
    "no_birth_date": "birth_date: La date de naissance est obligatoire.",
}
FIELD_OF_FAULT = {  # imported lines that lost a field
    "nir_key": "nir:", "bad_gp": "gp_rpps:", "bad_email": "email:", "bad_phone": "phone_",
    "bad_postcode": "postcode:", "bad_place": "birth_place_code:", "wrong_town": "city:",
}  # fmt: skip


def _gps() -> list[str]:
    return list(Practitioner.objects.filter(internal=False).values_list("rpps", flat=True))


@pytest.fixture
def export(group, tmp_path: Path):
    path = tmp_path / "export.csv"
    summary = write_legacy_export(path, patients=1200, seed=99, today=TODAY, gps=_gps(),
                                  faults=25, duplicates=10, encoding="cp1252")  # fmt: skip
    return path, summary


def _establishment() -> Establishment:
    return Establishment.objects.order_by("finess").first()


def test_an_export_is_imported_with_its_faults_refused_and_explained(export, tmp_path):
    from rempart.imports.models import ImportLine

    path, written = export
    before = Patient.objects.count()
    rejects = tmp_path / "rejets.csv"
    summary = import_file(path, establishment_finess=_establishment().finess,
                          reject_path=rejects, batch_size=300, workers=0)  # fmt: skip
    # Only the lines without a usable identity are refused; every other patient comes in.
    assert summary.rejected == len(written.refused) == 11  # 25 faults, the 11 kinds in turn
    assert summary.imported == written.rows - 11
    assert summary.warned >= len(written.warned) == 14
    assert Patient.objects.count() == before + summary.imported
    lines = ImportLine.objects.filter(job_id=summary.job_id)
    refused = {r.line: r for r in lines.filter(kind="refused")}
    assert {n: r.reasons for n, r in refused.items()} == {
        n: REASON_OF_FAULT[fault] for n, fault in written.refused.items()
    }
    # The refused line is kept sealed, whole, for its correction in the page.
    some = next(iter(refused.values()))
    assert set(some.content) >= {"nom", "prenom", "naissance"}
    warned = {w.line: w.reasons for w in lines.filter(kind="warning")}
    for n, fault in written.warned.items():
        assert FIELD_OF_FAULT[fault] in warned[n], (fault, warned[n])
    # A wrong NIR key: the patient comes in without it, provisional.
    nir_line = next(n for n, f in written.warned.items() if f == "nir_key")
    patient = Patient.objects.get(pk=lines.get(line=nir_line, kind="warning").patient_id)
    assert patient.nir is None and patient.identity_status == "PROV"
    with rejects.open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    assert rows[0][:3] == ["ligne", "motif", "ipp"]
    assert {int(r[0]): r[1] for r in rows[1:]} == {
        line: REASON_OF_FAULT[fault] for line, fault in written.refused.items()
    }
    assert rejects.stat().st_mode & 0o777 == 0o600
    # Each committed batch left its audit event (job, lines, counts; no patient values).
    from rempart.audit.models import Action, Event

    batches = Event.objects.filter(action=Action.IMPORT, resource_id=str(summary.job_id))
    assert batches.count() == -(-written.rows // 300)
    assert sum(e.detail["imported"] for e in batches) == summary.imported
    assert Event.objects.filter(resource_type="DuplicateCandidate").exists()


def test_a_quoted_file_is_read_by_the_csv_module_as_the_plain_one_is_by_the_workers(export):
    """A plain file's lines are split by the workers (sources.read_blocks); the same export
    with every field quoted is parsed by the csv module: both give the same import."""
    from rempart.imports.models import ImportLine

    path, _ = export
    quoted = path.with_name("quoted.csv")
    with (
        path.open(encoding="cp1252", newline="") as source,
        quoted.open("w", encoding="cp1252", newline="") as target,
    ):
        csv.writer(target, delimiter=";", quoting=csv.QUOTE_ALL).writerows(
            csv.reader(source, delimiter=";")
        )
    from rempart.imports.services import _scan

    assert _scan(path)[1] and not _scan(quoted)[1]  # plain, and not
    first, second = Establishment.objects.order_by("finess")[:2]  # IPPs apart

    def outcome(file: Path, finess: str) -> tuple[object, ...]:
        summary = import_file(file, establishment_finess=finess, batch_size=250, workers=0)
        lines = ImportLine.objects.filter(job_id=summary.job_id)
        return (
            summary.imported,
            summary.rejected,
            dict(lines.filter(kind="refused").values_list("line", "reasons")),
            dict(lines.filter(kind="warning").values_list("line", "reasons")),
        )

    assert outcome(quoted, first.finess) == outcome(path, second.finess)


def test_french_data_as_it_is_comes_in(export):
    """Accented e-mail addresses, phones in every notation, mixed date formats, stray spaces,
    town GPs outside the directory: none of it costs a patient or a field."""
    from rempart.imports.models import ImportLine

    path, written = export
    known = set(Practitioner.objects.values_list("rpps", flat=True))
    summary = import_file(path, batch_size=400, workers=0)
    new = Patient.objects.filter(created_at__gte=ImportJob.objects.get(pk=summary.job_id)
                                 .started_at)  # fmt: skip
    emails = [p.email for p in new if p.email]
    assert sum(1 for e in emails if not e.isascii()) > 20
    warned = ImportLine.objects.filter(job_id=summary.job_id, kind="warning")
    for field, fault in (("email", "bad_email"), ("city", "wrong_town")):
        # "St Denis", "Paris 11e", "CRETEIL CEDEX" are the towns of their postcodes.
        assert (
            not warned.filter(reasons__startswith=field)
            .exclude(line__in=[n for n, f in written.warned.items() if f == fault])
            .exists()
        ), field
    with path.open(encoding="cp1252") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert any(r["tel"].startswith("+33") for r in rows) and any(
        "-" in r["naissance"] for r in rows
    )
    assert any(r["ville"].startswith("St ") for r in rows) and any(
        r["ville"].startswith("Paris ") for r in rows
    )
    town = {r["medecin_traitant_rpps"] for r in rows} - known - {"", "1234567"}
    created = Practitioner.objects.filter(rpps__in=town)
    assert created.count() == len(town) and all(p.to_complete for p in created)
    with_gp = [p for p in new if p.gp_id is not None]
    assert len(with_gp) > len(new) // 2
    assert {p.gp_id for p in with_gp} <= set(Practitioner.objects.values_list("id", flat=True))


def test_a_refused_line_creates_no_practitioner_to_complete(group, tmp_path):
    from rempart.lib.identifiers import luhn_complete

    kept, refused = luhn_complete("1888888801"), luhn_complete("1888888802")
    path = tmp_path / "export.csv"
    path.write_text(
        "nom;prenoms;sexe;naissance;medecin_traitant_rpps\n"
        f"DUPONT;Jeanne;F;14/03/1985;{kept}\n"
        f"DURAND;Paul;M;31/02/1960;{refused}\n"  # no such day: refused
        f";Anne;F;01/02/1970;{refused}\n",  # no family name: refused
        encoding="utf-8",
    )
    summary = import_file(path, workers=0)
    assert (summary.imported, summary.rejected) == (1, 2)
    assert Practitioner.objects.filter(rpps=kept, to_complete=True).exists()
    assert not Practitioner.objects.filter(rpps=refused).exists()


def test_imported_patients_are_sealed_searchable_and_keep_their_ipp(export):
    path, _ = export
    import_file(path, establishment_finess=_establishment().finess, batch_size=500, workers=0)
    with path.open(encoding="cp1252") as handle:
        row = next(r for r in csv.DictReader(handle, delimiter=";") if r["matricule"])
    found = patients_find_by_nir(actor=ACTOR, nir=row["matricule"])
    assert len(found) >= 1
    patient = found[0]
    assert patient.first_given_name == row["prenom"]
    assert patient.birth_date.strftime("%d/%m/%Y") == row["naissance"]
    assert PatientIdentifier.objects.get(patient=patient).ipp == row["ipp"]


def test_people_registered_twice_become_duplicate_candidates_not_merges(export):
    path, written = export
    before = Patient.objects.count()
    summary = import_file(path, batch_size=400, workers=0)
    assert summary.duplicates >= written.duplicated
    assert Patient.objects.count() == before + summary.imported  # nobody merged away
    pair = DuplicateCandidate.objects.filter(reason="same_traits").first()
    a, b = Patient.objects.get(pk=pair.patient_a_id), Patient.objects.get(pk=pair.patient_b_id)
    assert (a.birth_name, a.first_given_name, a.birth_date) == (
        b.birth_name,
        b.first_given_name,
        b.birth_date,
    )


def test_the_same_file_is_not_imported_twice(export):
    path, _ = export
    first = import_file(path, batch_size=500, workers=0)
    count = Patient.objects.count()
    again = import_file(path, batch_size=500, workers=0)
    assert again.already_done and again.job_id == first.job_id
    assert Patient.objects.count() == count


def test_a_utf8_comma_file_with_its_own_mapping(group, tmp_path):
    path = tmp_path / "autre.csv"
    path.write_text(
        "NOM_NAISSANCE,PRENOMS,GENRE,DATE_NAISS,NIR\n"
        "Lefèvre,Hélène Marie,F,1985-03-14,\n"
        "Ñúñez,José,M,1990-01-02,\n",
        encoding="utf-8",
    )
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({
        "name": "autre",
        "columns": {"birth_name": "NOM_NAISSANCE", "given_names": "PRENOMS", "sex": "GENRE",
                    "birth_date": "DATE_NAISS", "nir": "NIR"},
        "date_formats": ["%Y-%m-%d"],
    }))  # fmt: skip
    summary = import_file(path, mapping_path=mapping, workers=0)
    assert (summary.imported, summary.rejected) == (2, 0)
    job = ImportJob.objects.get(pk=summary.job_id)
    assert job.mapping == "autre" and job.status == "done"
    names = {p.birth_name for p in Patient.objects.filter(created_at__gte=job.started_at)}
    assert {"LEFÈVRE", "ÑÚÑEZ"} <= names


def test_a_file_without_the_required_columns_is_refused_whole(group, tmp_path):
    path = tmp_path / "incomplet.csv"
    path.write_text("nom;prenom\nDUPONT;Jean\n", encoding="utf-8")
    count = Patient.objects.count()
    with pytest.raises(SourceError, match="no column for"):
        import_file(path, workers=0)
    assert Patient.objects.count() == count
    assert not ImportJob.objects.exists()


def test_an_empty_file_is_refused(group, tmp_path):
    path = tmp_path / "vide.csv"
    path.write_bytes(b"")
    with pytest.raises(SourceError, match="empty"):
        import_file(path, workers=0)


def test_a_legacy_ipp_already_given_to_someone_else_gets_a_new_number(group, tmp_path):
    establishment = _establishment()
    taken = PatientIdentifier.objects.filter(establishment=establishment).first().ipp
    path = tmp_path / "ipp.csv"
    path.write_text(
        "ipp;nom;prenom;naissance;sexe\n"
        f"{taken};MARTIN;Paul;02/03/1950;m\n"
        "777777;DURAND;Anne;04/05/1960;f\n",
        encoding="utf-8",
    )
    summary = import_file(
        path, establishment_finess=establishment.finess, reject_path=tmp_path / "r.csv", workers=0
    )
    assert (summary.imported, summary.rejected, summary.warned) == (2, 0, 1)
    from rempart.imports.models import ImportLine

    warning = ImportLine.objects.get(job_id=summary.job_id, kind="warning")
    assert warning.line == 2 and "IPP d'origine déjà attribué" in warning.reasons
    assert PatientIdentifier.objects.filter(establishment=establishment, ipp="777777").exists()
    renumbered = PatientIdentifier.objects.get(patient_id=warning.patient_id)
    assert renumbered.ipp != taken


def test_a_first_import_asks_the_table_only_of_the_ipps_whose_hash_it_has_given(group):
    import uuid

    from django.db import transaction

    from rempart.imports.services import _RENUMBERED, Batch, _assign_ipps, _GivenIpps

    def batch(*rows: tuple[str, int]) -> Batch:
        ids = [uuid.uuid4() for _ in rows]
        made = Batch(last_line=0, ipp_ids=b"".join(i.bytes for i in ids))
        made.ipps, made.ipp_lines = [ipp for ipp, _ in rows], [line for _, line in rows]
        return made

    establishment = _establishment()
    taken = PatientIdentifier.objects.filter(establishment=establishment).first().ipp
    given = _GivenIpps()
    given.add([taken])
    with transaction.atomic():
        first = batch((taken, 2), ("", 3))
        kept, renumbered = _assign_ipps(establishment.id, first, given)
    # given, and in the table: a new number, the warning naming the line and the patient
    assert renumbered == [(2, _RENUMBERED, uuid.UUID(bytes=first.ipp_ids[:16]))]
    assert taken not in kept and kept[0] != kept[1] and all(kept)
    # What this batch gave is known to the next one (both numbers just drawn).
    assert sorted(given.maybe_taken(kept)) == sorted(kept)

    class EveryHashMet(_GivenIpps):  # a hash collision on every IPP
        def maybe_taken(self, ipps):
            return list(ipps)

    with transaction.atomic():
        kept, renumbered = _assign_ipps(
            establishment.id, batch(("L-900001", 4), ("L-900001", 5)), EveryHashMet()
        )
    assert [line for line, _, _ in renumbered] == [5]  # met twice in the batch: renumbered once
    assert kept[0] == "L-900001" and kept[1] != "L-900001"  # not in the table: kept


def test_given_ipps_are_all_found_across_merged_levels():
    from rempart.imports.services import _GivenIpps

    given = _GivenIpps()
    batches = [[f"{b:03d}-{i:05d}" for i in range(100)] for b in range(43)]
    for ipps in batches:
        given.add(ipps)
    assert 1 < len(given._levels) < 8  # merged as they grow: a binary search per level
    every = [ipp for ipps in batches for ipp in ipps]
    assert given.maybe_taken(every) == every
    never = [f"X{i}" for i in range(20_000)]
    assert given.maybe_taken(never) == []  # 64-bit hashes: no collision among these


def test_an_import_leaves_the_callers_garbage_collector_as_it_found_it(export):
    import gc

    path, _ = export
    assert gc.get_freeze_count() == 0
    import_file(path, establishment_finess=_establishment().finess, batch_size=400, workers=0)
    assert gc.get_freeze_count() == 0  # what it froze for its run is thawed


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("07/03/1961", dt.date(1961, 3, 7)),
        ("1961-03-07", dt.date(1961, 3, 7)),
        ("31/02/1961", None),
        ("7/3/1961", dt.date(1961, 3, 7)),
        ("+7/03/1961", None),
        ("07/١٢/1961", None),
        ("dd/mm/yyyy", None),
    ],
)
def test_dates_are_read_in_the_mappings_formats_only(raw, expected):
    from rempart.imports.sources import Mapping, RowReader

    reader = RowReader(Mapping.load(None), ["naissance"])
    assert reader._date(raw) == expected
