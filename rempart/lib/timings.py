"""Where a long command spends its time, phase by phase: what `rempart generate -v 2` and
`rempart import -v 2` print, and what bench/bulk.py writes into bench/RESULTS.md.

Worker processes count CPU seconds (`time.process_time`): on two cores they share the machine
with the writer and PostgreSQL, so their wall time says more about the machine than the work.
The writer counts wall seconds, waits included: that is what the user waits for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager


class Timings:
    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = self._clock()
        try:
            yield
        finally:
            self.add(name, self._clock() - started)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def merge(self, other: Mapping[str, float]) -> None:
        for name, seconds in other.items():
            self.add(name, seconds)


def cpu_timings() -> Timings:
    return Timings(time.process_time)


def timing_lines(seconds: Mapping[str, float]) -> list[str]:
    width = max((len(name) for name in seconds), default=0)
    return [f"  {name:<{width}}  {value:8.2f} s" for name, value in seconds.items()]
