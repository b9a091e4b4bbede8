"""Searches through blind indexes: candidates from truncated digests, exact filter after decrypt."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest
from django.core.exceptions import ValidationError

from rempart.audit.context import Actor
from rempart.lib.normalise import fold_name
from rempart.patients.models import Patient
from rempart.records.selectors import patients as sel

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


def test_a_given_name_narrows_through_the_compound_index(group):
    target = group.patients[20]
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


def test_false_positives_of_a_truncated_index_are_filtered_out(group):
    # With 10 bits over 1,500 patients, different names share digests: find such a pair.
    by_digest: dict[int, list[Patient]] = defaultdict(list)
    for patient in Patient.objects.exclude(bidx_birth_name=None).order_by("id")[:1500]:
        by_digest[patient.bidx_birth_name].append(patient)
    a, b = next(
        (ps[0], other)
        for ps in by_digest.values()
        for other in ps[1:]
        if fold_name(other.birth_name) != fold_name(ps[0].birth_name)
    )
    b.birth_date = a.birth_date  # same digest, same birth date: b is a candidate for a's name
    b.save()
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
    from collections import Counter

    name, count = Counter(p.data.birth_name for p in group.patients).most_common(1)[0]
    assert count >= 3
    settings.REMPART_SEARCH_MAX_CANDIDATES = 2
    with pytest.raises(sel.SearchTooBroad):
        sel.patients_find_by_phonetic_name(actor=ACTOR, name=name)


def test_an_unknown_patient_id_is_not_found(group):
    with pytest.raises(sel.PatientNotFound):
        sel.patient_get(actor=ACTOR, patient_id="not-a-uuid")
    with pytest.raises(sel.PatientNotFound):
        sel.patient_get(actor=ACTOR, patient_id="01a21f73-9c77-7914-90e5-319818efc82d")
