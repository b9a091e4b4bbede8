"""Caches of values read from files keep short keys only: a file of long distinct values (a
CSV field may hold 128 KB) cannot fill a worker's memory through them."""

from __future__ import annotations

import datetime as dt

import pytest

from rempart.breach import analyse, traits
from rempart.imports.sources import _read_date
from rempart.lib import caching, communes, normalise, phonetic


def test_only_short_calls_are_cached():
    calls = []

    @caching.short_lru_cache(maxsize=10, longest=5)
    def upper(value: str) -> str:
        calls.append(value)
        return value.upper()

    assert upper("abc") == upper("abc") == "ABC"
    assert calls == ["abc"]  # the second came from the cache
    assert upper("abcdef") == upper("abcdef") == "ABCDEF"
    assert calls == ["abc", "abcdef", "abcdef"]  # too long: computed each time, never kept
    assert upper.cache_info().currsize == 1

    @caching.short_lru_cache(maxsize=10, longest=5)
    def pair(a: str, b: tuple[str, ...]) -> str:
        calls.append(a)
        return a + "".join(b)

    assert pair("ab", ("cdefgh",)) == pair("ab", ("cdefgh",))  # only strings are measured
    assert pair("abcdef", ("x",)) == "abcdefx"
    assert pair.cache_info().currsize == 1


LONG = "DUPONT" * 30  # 180 characters


@pytest.mark.parametrize(
    ("function", "args"),
    [
        (normalise.fold_name, (LONG,)),
        (phonetic.phonetic_code, (LONG,)),
        (communes.fold_town, (LONG,)),
        (communes._address_fault, ("75015", LONG)),
        (_read_date, ("01/02/1990" + " " * 200, ("%d/%m/%Y",))),
        (traits.name_keys, (LONG,)),
        (traits.given_words, (LONG,)),
        (traits.town, (LONG,)),
        (analyse._ordinal, ("1990-01-02" + "0" * 200,)),
    ],
)
def test_the_caches_of_file_values_do_not_keep_long_ones(function, args):
    function.cache_clear()
    assert function(*args) == function.__wrapped__(*args)
    assert function.cache_info().currsize == 0
    short = tuple(a[:20] if isinstance(a, str) else a for a in args)
    function(*short)
    assert function.cache_info().currsize == 1  # a short one is kept


def test_a_long_date_is_read_as_it_was():
    assert _read_date("01/02/1990", ("%d/%m/%Y",)) == dt.date(1990, 2, 1)
    assert _read_date("01/02/1990" + " " * 200, ("%d/%m/%Y",)) is None


def test_a_column_memo_computes_each_short_value_once_and_keeps_no_long_one():
    calls = []

    def upper(value: object) -> object:
        calls.append(value)
        return value.upper() if isinstance(value, str) else value

    memo = caching.ColumnMemo(upper, size=5, longest=5)
    assert memo(["ab", "cd", "ab", None]) == ["AB", "CD", "AB", None]
    assert sorted(calls, key=str) == [None, "ab", "cd"]  # "ab" once
    calls.clear()
    assert memo(["cd", None, "ab"]) == ["CD", None, "AB"]
    assert calls == []  # all kept from the first call
    long = "x" * 6
    assert memo([long, long, ("ab", long)]) == ["XXXXXX", "XXXXXX", ("ab", long)]
    assert calls.count(long) == 1  # once per call, as any new value...
    assert memo([long]) == ["XXXXXX"]
    assert calls.count(long) == 2  # ...but never kept: computed again
    assert len(memo._table) == 3  # nor the tuple holding it
    calls.clear()
    assert memo(["ef", "gh", "ij"]) == ["EF", "GH", "IJ"]  # past 5 values: it starts afresh
    assert len(memo._table) == 3
    assert memo(["ab"]) == ["AB"] and calls[-1] == "ab"
