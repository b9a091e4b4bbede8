"""Settings of the load test (bench/load.py): Rempart's own, with the read budgets raised so
that the load measures throughput and not lockouts. The budgets are still counted (in Redis,
shared by the workers) on every read, by the same code; only their limits differ."""

from rempart.settings import *  # noqa: F403

REMPART_READ_BUDGETS = {role: (100_000, 100_000, 100_000) for role in REMPART_READ_BUDGETS}  # noqa: F405
REMPART_PEER_FLOOR = 10**9  # no peer alert: the benchmark's accounts all read alike
