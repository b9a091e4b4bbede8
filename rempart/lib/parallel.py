"""Ordered parallel map with a bounded number of tasks in flight.

multiprocessing's imap reads its whole input ahead: a million-row file would sit in memory.
Here at most `ahead` batches are queued or running, so memory stays flat whatever the input.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.pool import AsyncResult, Pool
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def bounded_imap(pool: Pool, fn: Callable[[T], R], items: Iterable[T], ahead: int) -> Iterator[R]:
    pending: deque[AsyncResult[R]] = deque()
    for item in items:
        if len(pending) >= ahead:
            yield pending.popleft().get()
        pending.append(pool.apply_async(fn, (item,)))
    while pending:
        yield pending.popleft().get()
