"""Normalisation and the French phonetic code."""

from __future__ import annotations

import pytest

from rempart.lib.normalise import fold_name, fold_phone
from rempart.lib.phonetic import phonetic_code


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Le Goff", "LE-GOFF"),
        ("hélène", "HELENE"),
        ("D'Almeida", "DALMEIDA"),
        ("Lœtitia", "LOETITIA"),
        ("  de la  Fontaine ", "DELAFONTAINE"),
    ],
)
def test_spellings_of_one_name_fold_to_one_key(typed, stored):
    assert fold_name(typed) == fold_name(stored)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("DUPONT", "DUPOND"),
        ("GAUTHIER", "GAUTIER"),
        ("LEFEBVRE", "LEFÈVRE"),
        ("ROUSSEAU", "ROUSSO"),
        ("PHILIPPE", "FILIPE"),
        ("LAURENT", "LORENT"),
        ("DUBOIS", "DUBOIT"),
    ],
)
def test_names_that_sound_alike_share_a_phonetic_code(a, b):
    assert phonetic_code(a) == phonetic_code(b)


@pytest.mark.parametrize(
    ("a", "b"), [("MARTIN", "MARTEL"), ("DURAND", "DUVAL"), ("PETIT", "PETER")]
)
def test_names_that_sound_different_do_not(a, b):
    assert phonetic_code(a) != phonetic_code(b)


def test_phone_numbers_fold_to_international_digits():
    assert fold_phone("06 12 34 56 78") == fold_phone("+33 6 12 34 56 78") == "33612345678"
    assert fold_phone("0033612345678") == "33612345678"
    assert fold_phone("+33 (0)6 12 34 56 78") == fold_phone("06.12.34.56.78") == "33612345678"
    assert fold_phone("+44 20 7946 0958") == "442079460958"
