"""The import's column-by-column path for plain rows (RowReader.plain_rows,
validation.clean_plain) against the full path it stands in for (RowReader.extract, then
clean_for_import): a row it takes gets the very model values and IPP the full path gives, and it
takes exactly the rows of which the full path has nothing to say (no refusal, no warning).
Checked on every row of a synthetic export, messy and faulty, read as one batch, and on rows
built from dangerous pieces."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rempart.imports.services import _Context, _gp
from rempart.imports.sources import Mapping, RowReader, Table, read_rows, sniff
from rempart.lib.identifiers import luhn_complete, nir_check_digits
from rempart.patients.validation import clean_for_import
from rempart.synth.legacy import HEADER, write_legacy_export

TODAY = dt.date(2026, 11, 28)
KNOWN_RPPS = luhn_complete("1000000001")  # in the directory
MAPPING = Mapping.load(None)
# A layout naming few fields, one of them from another column, one date format: the fields it
# does not name are empty in both paths.
REDUCED = Mapping(
    "reduit",
    {"birth_name": ["nom"], "given_names": ["prenoms"], "sex": ["sexe"],
     "birth_date": ["naissance"], "nir": ["matricule"], "phone_1": ["tel2"], "ipp": ["ipp"]},
    ["%d/%m/%Y"],
)  # fmt: skip


def _plain(rows: list[tuple[int, list[str]]], context: _Context) -> dict[int, object]:
    """What the plain path gives of a batch, by line: (model values, IPP) of each row it takes."""
    reader = RowReader(context.mapping, context.header)

    def gp(rpps: str) -> uuid.UUID | None:
        gp_id, warnings = _gp(context, rpps, {})
        return None if warnings else gp_id

    plain = reader.plain_rows(Table.of_rows(rows, reader.width), TODAY, gp)
    names = list(plain.columns)
    assert sorted(line for line, _ in plain.others) == sorted(
        {line for line, _ in rows} - set(plain.lines)
    ), "a row is both taken and left, or neither"
    return {
        line: ({name: plain.columns[name][k] for name in names}, plain.ipps[k])
        for k, line in enumerate(plain.lines)
    }


def _full(values: list[str], context: _Context) -> object:
    """What the full path keeps of a row: None when the row is refused or warned of; else
    (model values, IPP)."""
    reader = RowReader(context.mapping, context.header)
    try:
        extracted = reader.extract(values)
        gp_id, warnings = _gp(context, extracted.gp_rpps, {})
        data, more = clean_for_import(extracted.data, today=TODAY, gp_id=gp_id)
    except ValidationError:
        full = None
    else:
        full = None if warnings or more else (data.as_model_values(), extracted.ipp)
    return full


def _context(header: list[str], mapping: Mapping = MAPPING) -> _Context:
    return _Context(mapping, header, {KNOWN_RPPS: uuid.uuid4()}, as_copy=True)


def test_plain_rows_of_an_export_come_out_as_the_full_path_gives(tmp_path: Path):
    path = tmp_path / "export.csv"
    gps = [KNOWN_RPPS]
    write_legacy_export(path, patients=3000, seed=5, today=TODAY, gps=gps, faults=300,
                        duplicates=50, encoding="cp1252")  # fmt: skip
    header, rows = read_rows(path, sniff(path))
    rows = list(rows)
    context = _context(header)
    plain = _plain(rows, context)
    left = [line for line, values in rows if _full(values, context) != plain.get(line)]
    assert not left, f"lines {left[:10]} differ"
    # Most rows are plain ones: the path is not a dead branch (300 faults, some warned).
    assert len(plain) > 2500


# Pieces as legacy software and people write them, right and wrong.
_names = st.sampled_from(["", " ", "DUPONT", " le  goff ", "Lefèvre", "N'DIAYE", "dupont",
                          "MÜLLER-ßAUER", "Dupont ", "Œdipe", "  ", "A",
                          "d'Arc\u00a0Jeanne"])  # fmt: skip
_given = st.sampled_from(["", "Jean", "Jean Pierre", " jean  pierre ", "Anne-Marie", "Zoé",
                          "Pierre Jean", "Marie", "Éloïse Ana"])  # fmt: skip
_dates = st.sampled_from(["", "14/03/1985", "1985-03-14", "14-03-1985", "14.03.1985",
                          "31/02/1960", "01/01/2999", "01/01/1880", "01/01/1890", "31/12/1889",
                          "1/3/1985", "14/03/85",
                          "٠١/٠٣/١٩٨٥", "28/11/2026", "29/11/2026"])  # fmt: skip
_sexes = st.sampled_from(["", "f", "F", "m", "H", "1", "2", "3", "i", "x", "Femme"])
_places = st.sampled_from(["", "75115", "2A004", "2b033", "99134", "ZZ999", "7511", " 75115 "])
_statuses = st.sampled_from(["", "prov", "VALI", "RECUP", "QUAL", "qual", "bogus"])
_emails = st.sampled_from(["", "jean.dupont@exemple.fr", "Jean.Dupont@Exemple.FR",
                           "jean..dupont@exemple.fr", "lou.guér3@exemple.fr", "a@b",
                           "x@exemple.fr ", "j@@exemple.fr", "a_b+c@sous.exemple.org"])  # fmt: skip
_phones = st.sampled_from(["", "0612345678", "06 12 34 56 78", "+33 6 12 34 56 78",
                           "+33 (0)6 12 34 56 78", "0145678912", "01.45.67.89.12", "06 12",
                           "0033612345678", "٠٦١٢٣٤٥٦٧٨", "07-12-34-56-78"])  # fmt: skip
_postcodes = st.sampled_from(["", "75015", "93200", "9310", "2A000", "75015 ", "13001"])
_cities = st.sampled_from(["", "PARIS", "Paris 15e", "St-Denis", "SAINT DENIS", "MARSEILLE",
                           "Saint-Denis Cedex", "LILLE"])  # fmt: skip
_rpps = st.sampled_from(["", KNOWN_RPPS, luhn_complete("1999999999"), "1234567",
                         luhn_complete("1999999999")[:-1] + "0"])  # fmt: skip
_ipps = st.sampled_from(["", "100001", " 100002 ", "A-12"])


@st.composite
def _nirs(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["none", "right", "wrong key", "other traits", "corsica", "form"]))
    if kind == "none":
        return ""
    if kind == "form":
        return draw(st.sampled_from(["123", "2 85 03 75 115 042 00", "X850375115042"]))
    body = {"right": "2850375115042", "wrong key": "2850375115042", "other traits": "1600199134007",
            "corsica": "18501" + "2A" + "004042"}[kind]  # fmt: skip
    key = nir_check_digits(body) if kind != "wrong key" else "00"
    spaced = draw(st.booleans())
    return f"{body[0]} {body[1:3]} {body[3:5]} {body[5:]} {key}" if spaced else body + key


# A row of which there is nothing to say; each example changes a few of its fields.
_BASE = {
    "ipp": "100001", "nom": "DUPONT", "prenom": "Jeanne", "prenoms": "Jeanne Marie",
    "nom_jeune_fille": "DUPONT", "naissance": "14/03/1985", "sexe": "F", "lieu_naissance": "75115",
    "adresse": "3 rue des Lilas", "cp": "75015", "ville": "PARIS", "tel": "0612345678",
    "tel2": "0145678912", "email": "jeanne.dupont@exemple.fr",
    "matricule": "2850375115042" + nir_check_digits("2850375115042"),
    "medecin_traitant_rpps": KNOWN_RPPS, "statut_identite": "",
}  # fmt: skip
_PIECES = {
    "ipp": _ipps, "nom": _names, "prenom": _given, "prenoms": _given, "nom_jeune_fille": _names,
    "naissance": _dates, "sexe": _sexes, "lieu_naissance": _places,
    "adresse": st.sampled_from(["", "3  rue  des Lilas", " 3 rue des Lilas "]),
    "cp": _postcodes, "ville": _cities, "tel": _phones, "tel2": _phones, "email": _emails,
    "matricule": _nirs(), "medecin_traitant_rpps": _rpps, "statut_identite": _statuses,
}  # fmt: skip


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from([0, 0, 0, -1, 1]), st.sampled_from([MAPPING, MAPPING, REDUCED]))
def test_built_rows_take_the_plain_path_only_as_the_full_path_would(data, width, mapping):
    changed = data.draw(st.sets(st.sampled_from(sorted(_PIECES)), min_size=1, max_size=3))
    base = _BASE if data.draw(st.booleans()) else {**_BASE, "matricule": ""}  # NIR or none
    row = {name: data.draw(_PIECES[name]) if name in changed else value
           for name, value in base.items()}  # fmt: skip
    header = [*HEADER, "statut_identite"]
    values = [row[name] for name in header]
    if width < 0:
        values = values[:-1]
    elif width > 0:
        values = [*values, "en trop"]
    context = _context(header, mapping)
    assert _full(values, context) == _plain([(2, values)], context).get(2)


def test_the_rules_both_paths_share_for_phones_and_names():
    from rempart.imports.sources import _names, _phones

    # The first number that looks like a mobile is the mobile, the other one the home phone.
    assert _phones("0145678912", "06 12 34 56 78") == ("06 12 34 56 78", "33612345678",
                                                       "0145678912")  # fmt: skip
    assert _phones("0612345678", "0712345678") == ("0612345678", "33612345678", "0712345678")
    assert _phones("0712345678", "0712345678") == ("0712345678", "33712345678", "")
    assert _phones("0145678912", "") == _phones("", "0145678912") == ("", "", "0145678912")
    assert _phones("", "") == ("", "", "")
    # A usage name that is the birth name is none; the first given name leads the others.
    assert _names("DUPONT", "dupont", "Jean Marie", "") == ("", "Jean Marie", "Jean")
    assert _names("DUPONT", "MARTIN", "Marie", "Jean") == ("MARTIN", "Jean Marie", "Jean")
    assert _names("DUPONT", "", "Jean Pierre", "Pierre") == ("", "Jean Pierre", "Pierre")


# Pairs of changes the draws above reach only now and then: each must take the full path.
_TRICKY = [
    {"statut_identite": "QUAL", "lieu_naissance": ""},
    {"statut_identite": "RECUP", "matricule": ""},
    {"statut_identite": "qual", "lieu_naissance": " "},
    {"cp": "9310", "ville": "PARIS"},
    {"cp": "75015", "ville": "LILLE"},
    {"sexe": "x", "matricule": ""},
    {"naissance": "31/02/1960", "medecin_traitant_rpps": luhn_complete("1999999999")},
]


def test_rows_that_need_two_changes_to_go_wrong_take_the_full_path():
    header = [*HEADER, "statut_identite"]
    context = _context(header)
    rows = [(k + 2, [{**_BASE, **change}[name] for name in header])
            for k, change in enumerate(_TRICKY)]  # fmt: skip
    plain = _plain([*rows, (99, [_BASE[name] for name in header])], context)
    assert list(plain) == [99]  # the untouched row only
    for line, values in rows:
        assert _full(values, context) is None, line
