"""The national directory of health professionals: the ANS extract's layout loaded (RPPS rows,
first address), re-runs idempotent, practitioners an import left "to complete" completed, the
group's own practitioners kept as they are, a wrong file refused whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from rempart.directory.annuaire import DirectoryFileError, directory_import
from rempart.directory.models import Practitioner
from rempart.lib.identifiers import luhn_complete
from rempart.records.services.directory import to_complete_id
from rempart.synth.annuaire import write_directory_extract


def test_the_extract_completes_the_practitioners_and_reruns_change_nothing(group, tmp_path):
    unknown = [luhn_complete(f"19{k:08d}") for k in range(3)]
    for rpps in unknown:
        Practitioner.objects.create(id=to_complete_id(rpps), rpps=rpps,
                                    family_name="", given_name="", specialty="",
                                    to_complete=True)  # fmt: skip
    internal = Practitioner.objects.filter(internal=True).first()
    places = set(internal.establishments.values_list("pk", flat=True))
    path = tmp_path / "PS_LibreAcces_Personne_activite_202612.txt"
    rows = write_directory_extract(path, people=400, seed=3, include=[*unknown, internal.rpps])
    assert rows > 400  # several activities for some
    before = Practitioner.objects.count()
    loaded = directory_import(path)
    assert loaded.rows == rows
    assert loaded.completed == 3 and loaded.created == loaded.practitioners - 4
    assert Practitioner.objects.count() == before + loaded.created
    for rpps in unknown:
        done = Practitioner.objects.get(rpps=rpps)
        assert not done.to_complete and done.family_name and done.profession == "Médecin"
        assert done.specialty == "Médecine générale" and done.address_line and done.postcode
        assert done.id == to_complete_id(rpps)  # the patients' links still hold
    internal.refresh_from_db()
    assert internal.internal and set(internal.establishments.values_list("pk", flat=True)) == places
    again = directory_import(path)
    assert again.created == 0 and Practitioner.objects.count() == before + loaded.created
    # ADELI rows (type 0) are not RPPS: left out.
    with path.open(encoding="utf-8") as handle:
        adeli = sum(1 for line in handle if line.startswith("0|"))
    assert adeli > 0 and loaded.practitioners < 400 + 1


@pytest.mark.parametrize("content", ["", "nom|prenom\nDUPONT|Jean\n", "\xff\xfe\x00"])
def test_a_file_that_is_not_an_extract_is_refused_whole(db, tmp_path, content):
    path = tmp_path / "annuaire.txt"
    path.write_bytes(content.encode("latin-1"))
    count = Practitioner.objects.count()
    with pytest.raises(DirectoryFileError):
        directory_import(path)
    assert Practitioner.objects.count() == count


def test_the_command_prints_its_counts(console, scratch_database: str, tmp_path: Path):
    console.run("migrate", "-v0")
    extract = tmp_path / "extrait.txt"
    console.run("directory", "extract", "--out", str(extract), "--people", "50")
    out = console.run("directory", "import", str(extract)).stdout
    assert "praticiens (RPPS) à jour" in out
