"""Normalisation and the French phonetic code."""

from __future__ import annotations

import datetime as dt
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


_NAMES = st.one_of(st.none(), st.text(alphabet=_LETTERS + _LETTERS.lower(), max_size=14))


@given(st.lists(st.text(alphabet=_LETTERS + _LETTERS.lower() + "\n", max_size=14), max_size=30))
@settings(max_examples=1500, deadline=None)
def test_codes_of_many_names_at_once_are_the_codes_of_each(names):
    """phonetic_codes runs each rule once over the names joined by newlines."""
    from rempart.lib.phonetic import _codes_of, phonetic_codes

    assert phonetic_codes(names) == [phonetic_code(name) for name in names]
    assert _codes_of(names) == [phonetic_code.__wrapped__(name) for name in names]  # no memo


@given(
    st.lists(
        st.tuples(
            _NAMES, st.sampled_from([None, dt.date(1985, 3, 14), dt.date(2001, 12, 1)]), _NAMES
        ),
        max_size=20,
    )
)
@settings(max_examples=1000, deadline=None)
def test_index_keys_over_columns_are_the_keys_of_each_row(rows):
    from rempart.patients import indexes as ix

    usage, born, birth = ([row[i] for row in rows] for i in range(3))
    assert ix.name_date_keys(birth, born) == [
        None if n is None or d is None else ix.name_date_key(n, d)
        for n, d in zip(birth, born, strict=True)
    ]
    assert ix.usage_date_keys(usage, born, birth) == [
        None if None in (u, d, b) else ix.usage_date_key(u, d, b)
        for u, d, b in zip(usage, born, birth, strict=True)
    ]
