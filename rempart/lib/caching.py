"""Caches of values read from files and forms, bounded in memory as well as in entries.

An LRU cache keeps its keys: a cache of 50,000 names is a few megabytes of real names, and
gigabytes of 100 KB ones (a CSV field may hold 128 KB, and nothing but the cache's size bounds
how many distinct ones a file sends). `short_lru_cache` caches only the calls whose string
arguments are all short; a longer one is computed every time, as if uncached. The check costs
about 30 ns a call (a closure, not a class: its __call__ would cost five times as much).
"""

from __future__ import annotations

from collections.abc import Callable
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
