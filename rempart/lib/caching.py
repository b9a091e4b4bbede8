"""Caches of values read from files and forms, bounded in memory as well as in entries.

An LRU cache keeps its keys: a cache of 50,000 names is a few megabytes of real names, and
gigabytes of 100 KB ones (a CSV field may hold 128 KB, and nothing but the cache's size bounds
how many distinct ones a file sends). `short_lru_cache` caches only the calls whose string
arguments are all short; a longer one is computed every time, as if uncached. The check costs
about 30 ns a call (a closure, not a class: its __call__ would cost five times as much).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache, update_wrapper
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# Longer than any name, town, date or postcode a person has (the INS birth name: 100 at most).
LONGEST = 128


def short_lru_cache(maxsize: int, longest: int = LONGEST) -> Callable[[F], F]:
    """lru_cache(maxsize) for the calls whose string arguments are at most `longest` long;
    `cache_info`, `cache_clear` and `__wrapped__` as lru_cache gives them."""

    def decorate(function: F) -> F:
        cached = lru_cache(maxsize=maxsize)(function)

        def call(*args: Any) -> Any:
            for arg in args:
                if type(arg) is str and len(arg) > longest:
                    return function(*args)
            return cached(*args)

        def call_one(value: Any) -> Any:  # the usual case, a little faster
            if type(value) is str and len(value) > longest:
                return function(value)
            return cached(value)

        wrapper: Any = call_one if function.__code__.co_argcount == 1 else call
        update_wrapper(wrapper, function)
        wrapper.cache_info = cached.cache_info
        wrapper.cache_clear = cached.cache_clear
        return wrapper  # type: ignore[no-any-return]

    return decorate


def _short(value: Any, longest: int) -> bool:
    if type(value) is str:
        return len(value) <= longest
    if type(value) is tuple:
        return all(_short(part, longest) for part in value)
    return True


class ColumnMemo:
    """`function` over a column of values, each distinct value computed once and kept from one
    call to the next (a file's batches): for the columns whose values repeat (given names,
    towns, dates, codes). Bounded as short_lru_cache is: at most `size` values, none with a
    string longer than `longest` (computed every time, not kept); past `size` it starts afresh.
    A column all kept costs one dict look-up a value."""

    def __init__(
        self,
        function: Callable[[Any], Any],
        size: int = 65_536,
        longest: int = LONGEST,
        *,
        many: bool = False,
    ):
        """`many`: `function` takes a list of values and gives their results in order."""
        self._function, self._size, self._longest, self._many = function, size, longest, many
        self._table: dict[Any, Any] = {}

    def __call__(self, column: Sequence[Any]) -> list[Any]:
        table = self._table
        try:
            return list(map(table.__getitem__, column))
        except KeyError:
            pass
        missing = list(set(column).difference(table))
        if self._many:
            new = dict(zip(missing, self._function(missing), strict=True))
        else:
            new = {value: self._function(value) for value in missing}
        longest = self._longest
        if len(table) + len(new) <= self._size and all(_short(v, longest) for v in new):
            table.update(new)  # the usual case: a few new values, all kept
            return list(map(table.__getitem__, column))
        out = [new[v] if v in new else table[v] for v in column]
        if len(table) + len(new) > self._size:
            table.clear()
        table.update((v, result) for v, result in new.items() if _short(v, longest))
        return out
