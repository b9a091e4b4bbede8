"""An import worker's collector (services._init_worker, _work): its automatic runs are off, so
the cycles a batch's refused rows leave must be collected before the next batch freezes what
lives on, or they would be frozen for good, a batch's worth at a time."""

from __future__ import annotations

import gc
import uuid
from itertools import pairwise
from pathlib import Path

from rempart.imports import services
from rempart.imports.sources import Mapping, read_blocks, read_header, sniff


def test_a_workers_batches_of_refused_rows_leave_nothing_behind(tmp_path: Path):
    path = tmp_path / "refused.csv"
    # no family name, no given name, no birth date: every line refused
    lines = ["ipp;nom;prenom;naissance", *(f"L{n};;;pas une date" for n in range(4000))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dialect = sniff(path)
    context = services._Context(Mapping.load(None), read_header(path, dialect),
                                {"10000000001": uuid.uuid4()}, as_copy=True,
                                dialect=dialect)  # fmt: skip
    blocks = list(read_blocks(path, 0, 1000))
    frozen = []
    try:
        services._init_worker(context)
        assert not gc.isenabled()  # the automatic runs, what _work makes up for
        for block in blocks:
            batch = services._work(block)
            assert len(batch.rejects) == 1000 and batch.count == 0
            del batch
            frozen.append(gc.get_freeze_count())
    finally:
        gc.unfreeze()
        gc.enable()
        services._context = None
    # Each batch's refused rows leave thousands of objects in cycles (exceptions and
    # their tracebacks); frozen uncollected, each batch would add them to what is kept.
    grown = [b - a for a, b in pairwise(frozen[1:])]  # after the first (caches fill)
    assert max(grown) < 2000, grown
