"""Searches through blind indexes: candidates from truncated digests, exact filter after decrypt."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from rempart.audit.context import Actor
from rempart.lib.normalise import fold_name
from rempart.patients.models import Patient
from rempart.records.selectors import patients as sel
from rempart.vault.fields import BlindIndexField

ACTOR = Actor.system("tests")  # the console: access control is tested in test_access.py


def _pick(group, predicate):
    return next(p for p in group.patients if predicate(p.data))


def test_it_finds_a_patient_by_birth_name_and_birth_date(group):
    target = group.patients[10]
    found = sel.patients_find_by_name_and_birth_date(
        actor=ACTOR, name=target.data.birth_name.lower(), birth_date=target.data.birth_date
    )
    assert target.id in {p.id for p in found}
    assert all(p.birth_date == target.data.birth_date for p in found)


def test_it_finds_a_married_woman_by_her_usage_name(group):
    target = _pick(group, lambda d: d.usage_name)
    found = sel.patients_find_by_name_and_birth_date(
        actor=ACTOR, name=target.data.usage_name, birth_date=target.data.birth_date
    )
    assert [p.id for p in found] == [target.id]


def test_it_ignores_accents_hyphens_and_case(group):
    target = _pick(group, lambda d: any(c in d.birth_name for c in "ÉÈÇ-' "))
    typed = fold_name(target.data.birth_name).lower()
    found = sel.patients_find_by_name_and_birth_date(
        actor=ACTOR, name=typed, birth_date=target.data.birth_date
    )
    assert target.id in {p.id for p in found}


def test_a_given_name_narrows_the_results(group):
    target = group.patients[20]
    sibling = Patient(**{**target.data.as_model_values(), "first_given_name": "Zébulon",
                         "given_names": "Zébulon"})  # fmt: skip
    sibling.save()
    both = sel.patients_find_by_name_and_birth_date(
        actor=ACTOR, name=target.data.birth_name, birth_date=target.data.birth_date
    )
    assert {target.id, sibling.id} <= {p.id for p in both}
    found = sel.patients_find_by_name_and_birth_date(
        actor=ACTOR,
        name=target.data.birth_name,
        given_name=target.data.first_given_name,
        birth_date=target.data.birth_date,
    )
    assert [p.id for p in found] == [target.id]


def test_it_finds_by_nir_with_or_without_spaces(group):
    target = _pick(group, lambda d: d.nir)
    nir = target.data.nir
    spaced = f"{nir[0]} {nir[1:3]} {nir[3:5]} {nir[5:7]} {nir[7:10]} {nir[10:13]} {nir[13:]}"
    assert [p.id for p in sel.patients_find_by_nir(actor=ACTOR, nir=spaced)] == [target.id]


def test_a_nir_with_a_wrong_key_is_refused_before_any_lookup(group):
    nir = _pick(group, lambda d: d.nir).data.nir
    wrong = nir[:13] + f"{(int(nir[13:]) + 1) % 97:02d}"
    with pytest.raises(ValidationError, match="clé du NIR"):
        sel.patients_find_by_nir(actor=ACTOR, nir=wrong)


def test_it_finds_by_email_and_by_either_phone(group):
    target = _pick(group, lambda d: d.email and d.phone_home)
    assert target.id in {
        p.id for p in sel.patients_find_by_email(actor=ACTOR, email=target.data.email.upper())
    }
    compact = target.data.phone_home.replace(" ", "")
    assert target.id in {p.id for p in sel.patients_find_by_phone(actor=ACTOR, phone=compact)}
    international = "+33 " + target.data.phone_mobile[1:] if target.data.phone_mobile else None
    if international:
        assert target.id in {
            p.id for p in sel.patients_find_by_phone(actor=ACTOR, phone=international)
        }


def test_phonetic_search_finds_a_name_spelt_otherwise(group):
    target = _pick(group, lambda d: d.birth_name.endswith("T") and len(d.birth_name) > 4)
    misspelt = target.data.birth_name[:-1] + "D"
    found = sel.patients_find_by_phonetic_name(
        actor=ACTOR, name=misspelt, birth_date=target.data.birth_date
    )
    assert target.id in {p.id for p in found}


def _shared_digest(group) -> tuple[Patient, Patient]:
    """A patient, and another of another name and birth date whose (name, birth date) digest is
    the same: found by trying names and dates (2^18 tries on average, a second or two)."""
    a = Patient.objects.get(pk=group.patients[40].id)
    field = Patient._meta.get_field("bidx_name_birth")
    target = field.digest(a.birth_name, a.birth_date)
    names = [a + b for a in ("MAR", "BEL", "COR", "DUV", "LEF", "ROB", "GAR", "POT")
             for b in ("TIN", "LOT", "NIER", "RAND", "VAL", "BOIS", "MONT", "CHAMP")]  # fmt: skip
    for name in names:
        for day in range(1, 45_000):
            born = dt.date(1900, 1, 1) + dt.timedelta(days=day)
            if field.digest(name, born) == target and born != a.birth_date:
                values = group.patients[41].data.as_model_values()
                b = Patient(**{**values, "birth_name": name, "usage_name": "", "birth_date": born})
                b.save()
                return a, b
    raise AssertionError("no collision among 2.9 million tries (expected about 11)")


def test_false_positives_of_a_truncated_index_are_filtered_out(group):
    a, b = _shared_digest(group)  # b is a candidate of every search for a's name and birth date
    found = sel.patients_find_by_name_and_birth_date(
        actor=ACTOR, name=a.birth_name, birth_date=a.birth_date
    )
    assert a.id in {p.id for p in found}
    assert b.id not in {p.id for p in found}


def test_a_search_with_no_match_returns_nothing(group):
    assert (
        sel.patients_find_by_name_and_birth_date(
            actor=ACTOR, name="NOMQUINEXISTEPAS", birth_date=dt.date(1901, 1, 1)
        )
        == []
    )


def test_criteria_too_broad_are_refused(group, settings):
    a, _ = _shared_digest(group)  # a's bucket holds two candidates
    settings.REMPART_SEARCH_MAX_CANDIDATES = 1
    with pytest.raises(sel.SearchTooBroad):
        sel.patients_find_by_phonetic_name(actor=ACTOR, name=a.birth_name, birth_date=a.birth_date)


def test_no_blind_index_hashes_a_low_entropy_trait_alone():
    # A name, a phonetic code, a given name or a birth date alone shows its frequency through
    # its buckets: each goes in only with the birth date (and never the date alone).
    high_entropy = {("nir",), ("email",), ("phone_mobile",), ("phone_home",)}
    for field in Patient._meta.concrete_fields:
        if isinstance(field, BlindIndexField):
            assert field.sources in high_entropy or (
                "birth_date" in field.sources and len(field.sources) > 1
            ), field.name


def test_the_same_name_on_another_birth_date_lands_in_another_bucket(group):
    target = group.patients[30]
    born = target.data.birth_date
    digest = Patient._meta.get_field("bidx_name_birth").digest
    days = [digest(target.data.birth_name, born + dt.timedelta(days=d)) for d in range(40)]
    assert len(set(days)) >= 39  # 18 bits: two of forty dates may collide, rarely more
    assert digest(target.data.birth_name.lower(), born) == days[0]


def test_a_usage_name_that_sounds_like_the_birth_name_is_not_indexed_twice(group):
    target = _pick(group, lambda d: not d.usage_name)
    patient = Patient.objects.get(pk=target.id)
    patient.usage_name = target.data.birth_name.upper()
    patient.save()
    patient.refresh_from_db()
    assert patient.bidx_name_usage is None
    assert patient.bidx_name_birth is not None
    found = sel.patients_find_by_name_and_birth_date(
        actor=ACTOR, name=target.data.birth_name, birth_date=target.data.birth_date
    )
    assert target.id in {p.id for p in found}


def test_an_unknown_patient_id_is_not_found(group):
    with pytest.raises(sel.PatientNotFound):
        sel.patient_get(actor=ACTOR, patient_id="not-a-uuid")
    with pytest.raises(sel.PatientNotFound):
        sel.patient_get(actor=ACTOR, patient_id="01a21f73-9c77-7914-90e5-319818efc82d")
