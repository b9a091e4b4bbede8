"""Reads from a PostgreSQL streaming replica, writes to the primary.

With `REMPART_REPLICA_URL` set, the selectors that read the most (the desk's searches, the
chart) run their reads on the replica inside `replica_reads()`; everything else, and every
write (the audit event recorded before the answer, the budget counters, the writes of the
pages), goes to the primary. Account locks are always read from the primary: a lock must hold
at once, whatever the replica's lag. A replica a few hundred milliseconds behind can miss a
patient registered that instant: the desk searches again; nothing is ever written from what a
replica said.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings

REPLICA = "replica"
_reading: ContextVar[bool] = ContextVar("rempart_replica_reads", default=False)


@contextmanager
def replica_reads() -> Iterator[None]:
    token = _reading.set(True)
    try:
        yield
    finally:
        _reading.reset(token)


class ReplicaRouter:
    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return REPLICA if _reading.get() and REPLICA in settings.DATABASES else None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return "default"

    def allow_relation(self, first: Any, second: Any, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == "default"
