"""An import worker's collector (services._init_worker, _work): its automatic runs are off, so
the cycles a batch's refused rows leave must be collected before the next batch freezes what
lives on, or they would be frozen for good, a batch's worth at a time."""

from __future__ import annotations

import gc
import uuid
from itertools import pairwise
from pathlib import Path

from rempart.imports import services
from rempart.imports.sources import Dialect, Mapping, read_blocks, read_header, sniff


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


def test_a_batchs_refused_warned_and_ipp_rows_come_out_in_line_order(tmp_path: Path, vault_dir):
    """Rows the column path leaves (a wrong width first, then faulty ones) are taken one by one
    out of line order; the batch gives its refused lines, warnings and IPPs in line order (a
    legacy IPP met twice keeps its first line's patient)."""
    path = tmp_path / "mixed.csv"
    lines = [
        "ipp;nom;prenom;naissance;sexe;email",
        "A2;;;pas une date;F;",  # 2: refused
        "A3;DUPONT;Jean;01/02/1980;M;pas une adresse",  # 3: warned (e-mail left out)
        "A4;;",  # 4: the wrong width, refused
        "A5;MARTIN;Anne;03/04/1975;F;",  # 5: plain
        "A6;DURAND;Paul;05/06/1990;M;faux@",  # 6: warned
        "A7;;;;;",  # 7: refused
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dialect = Dialect("utf-8", ";")  # too ragged for the sniffer, which is not tested here
    context = services._Context(Mapping.load(None), read_header(path, dialect), {},
                                as_copy=True, dialect=dialect)  # fmt: skip
    (block,) = read_blocks(path, 0, 100)
    batch = services.process_batch(context, block)
    assert [line for line, _, _ in batch.rejects] == [2, 4, 7]
    assert [line for line, _, _ in batch.warnings] == [3, 6]
    assert batch.ipp_lines == [3, 5, 6] and batch.ipps == ["A3", "A5", "A6"]
    assert batch.count == 3 and len(batch.ipp_ids) == 3 * 16
