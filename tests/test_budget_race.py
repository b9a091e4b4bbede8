"""Budget counters under parallel requests of one account: each request counts the others that
committed before it, so no two pass at the budget's edge (no overshoot). The requests run in
threads, each on its own connection, committing as pages do."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection, connections
from django.utils import timezone

from rempart.access import budgets

PARALLEL = 8


@pytest.mark.django_db
@pytest.mark.parametrize("redis_url", [None, "redis://127.0.0.1:6379/15"])
def test_parallel_requests_of_one_account_each_see_a_distinct_count(settings, redis_url):
    if redis_url is None and connection.vendor != "postgresql":
        pytest.skip("the database counter's lock is PostgreSQL's")
    settings.REDIS_URL = redis_url
    budgets._redis.cache_clear()
    user_id = uuid.uuid4().int % 1_000_000_000
    # One instant for every request: a run across the turn of an hour would restart the hour's
    # count halfway and report every early count twice (a CI run once did exactly that).
    now = timezone.now()
    start = threading.Barrier(PARALLEL)
    counts: list[int] = []
    errors: list[BaseException] = []

    def request() -> None:
        try:
            start.wait()
            counts.append(budgets.touch(user_id, [uuid.uuid4()], now=now).hour)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    for _ in range(3):  # a few rounds: a race shows as two requests reporting the same count
        threads = [threading.Thread(target=request) for _ in range(PARALLEL)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    _committed_by_threads(user_id)
    assert not errors
    # Each request's count includes every request that finished before it: all distinct, the
    # last one the total. Without the per-account lock, requests racing at the same moment
    # each count their own row only and report the same number.
    assert sorted(counts) == list(range(1, 3 * PARALLEL + 1))
    budgets._redis.cache_clear()


def _committed_by_threads(user_id: int) -> None:
    """The requests ran on their own connections and committed: remove their rows the same way."""
    from rempart.access.models import PatientSeen

    def clean() -> None:
        PatientSeen.objects.filter(user_id=user_id).delete()
        connections.close_all()

    cleaner = threading.Thread(target=clean)
    cleaner.start()
    cleaner.join()
