"""Normalisation and the French phonetic code."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rempart.lib.normalise import _LIGATURES, fold_name, fold_phone
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


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123ÉÈÇŒ- '"


@given(st.text(alphabet=_LETTERS + _LETTERS.lower(), max_size=14))
@settings(max_examples=3000, deadline=None)
def test_shortcuts_give_the_codes_and_keys_of_the_full_rules(name):
    """The phonetic code skips a rule whose letters are absent, and fold_name skips Unicode
    folding for ASCII: both must give what the full rules give."""
    import unicodedata

    from rempart.lib.phonetic import _COMPILED

    full = "".join(
        c for c in unicodedata.normalize("NFKD", name.translate(_LIGATURES).upper())
        if not unicodedata.combining(c)
    )  # fmt: skip
    full = re.sub(r"[^A-Z0-9]", "", full)
    assert fold_name.__wrapped__(name) == full
    code = full
    for pattern, repl in _COMPILED:
        code = pattern.sub(repl, code)
    assert phonetic_code.__wrapped__(name) == code


@given(st.text(alphabet="0123456789 +-.()/x٣é", max_size=20))
@settings(max_examples=2000, deadline=None)
def test_phone_folding_keeps_the_digits_a_regex_keeps(raw):
    digits = re.sub(r"\D", "", raw)
    if digits.startswith("00"):
        digits = digits[2:]
    elif len(digits) == 10 and digits.startswith("0"):
        digits = "33" + digits[1:]
    if len(digits) == 12 and digits.startswith("330"):
        digits = "33" + digits[3:]
    assert fold_phone(raw) == digits
