"""Plain files read by the workers (sources.PlainScan, read_blocks, Block.rows) against the csv
module's reading of the same file in the main process (read_rows): the same rows with the same
line numbers, whatever the block size, the resumption point, the line endings and the encoding;
any file the csv module would read otherwise (a quote, a lone carriage return) is not plain and
keeps the csv module."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rempart.imports.sources import (
    Block,
    Dialect,
    PlainScan,
    SourceError,
    Table,
    read_blocks,
    read_rows,
    sniff,
)

FILES = settings(max_examples=300, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
_cells = st.sampled_from(["", " ", "DUPONT", "Lefèvre", " le goff ", "Zoé", "14/03/1985",
                          "06 12 34 56 78", "\t", "a,b", "x|y", "ŒUF", "é" * 3, "  ",
                          "DUP\x00ONT", "\u00a0", "\u00a0x"])  # fmt: skip
WIDTH = 3  # the header's: the other lines are rows all the same, not columns
_lines = st.one_of(
    st.lists(_cells, min_size=WIDTH, max_size=WIDTH).map(";".join),  # most lines
    st.lists(_cells, min_size=1, max_size=6).map(";".join),
    st.sampled_from(["", ";;;", " ; ", ";", "\u00a0;\x0b", ";\x1c", "\x0c"]),  # blank: none
)


def _scan(data: bytes, cut: int = 1 << 20) -> bool:
    scan = PlainScan()
    for start in range(0, len(data), cut):
        scan.update(data[start : start + cut])
    return scan.plain


def _rows(table: Table) -> list[tuple[int, list[str]]]:
    """A table's rows, in line order."""
    fit = [(line, [column[k] for column in table.cells]) for k, line in enumerate(table.lines)]
    return sorted(fit + table.others)


def _blocks(path: Path, dialect: Dialect, after: int, size: int) -> list[tuple[int, list[str]]]:
    return [row for block in read_blocks(path, after, size)
            for row in _rows(block.table(dialect, WIDTH))]  # fmt: skip


@FILES
@given(
    lines=st.lists(_lines, max_size=40),
    ending=st.sampled_from(["\n", "\r\n"]),
    last_newline=st.booleans(),
    encoding=st.sampled_from(["utf-8-sig", "cp1252"]),
    size=st.integers(1, 7),
    after=st.integers(0, 45),
)
def test_a_plain_file_reads_as_the_csv_module_reads_it(
    tmp_path_factory, lines, ending, last_newline, encoding, size, after
):
    text = ending.join(["nom;prenom;naissance", *lines]) + (ending if last_newline else "")
    data = text.encode(encoding)
    path = Path(tmp_path_factory.mktemp("plain")) / "export.csv"
    path.write_bytes(data)
    assert _scan(data) and _scan(data, cut=3)  # CRLFs cut between two reads too
    dialect = Dialect(encoding, ";")
    _, rows = read_rows(path, dialect)
    expected = [row for row in rows if row[0] > after]
    assert _blocks(path, dialect, after, size) == expected
    assert _rows(Table.of_rows(expected, WIDTH)) == expected
    blocks = list(read_blocks(path, after, size))
    # Each block holds whole lines, numbered on from the last; the last line of each is known.
    for block, following in pairwise(blocks):
        assert following.first_line == block.last_line + 1
        assert block.data.endswith(b"\n")


@pytest.mark.parametrize(
    "data",
    [
        b'nom;prenom\n"DUPONT";Jean\n',  # a quote: the csv module unquotes
        b"nom;prenom\nDUPONT;Jean\rMARTIN;Paul\n",  # a lone CR ends a line for the csv module
        b'nom;prenom\nO"NEIL;Jean\n',
    ],
)
def test_a_file_the_csv_module_reads_otherwise_is_not_plain(data):
    assert not _scan(data)
    assert not _scan(data, cut=1)


def test_a_crlf_cut_by_two_reads_is_still_a_line_ending():
    scan = PlainScan()
    for part in (b"nom;prenom\r", b"\nDUPONT;Jean\r", b"\n"):
        scan.update(part)
    assert scan.plain
    scan.update(b"x\r")  # ends on a lone CR
    assert not scan.plain


def test_undecodable_bytes_in_a_block_name_their_line_not_their_value():
    block = Block(10, "DUPONT;Jean\nMARTIN;Zoé\n".encode() + b"LEF\x81VRE;Ana\n")
    with pytest.raises(SourceError) as caught:
        block.table(Dialect("cp1252", ";"), 2)
    assert str(caught.value) == "undecodable bytes after line 11 (cp1252)"
    assert "LEF" not in str(caught.value)


def test_a_field_over_the_csv_limit_is_refused_by_both_readers(tmp_path):
    import csv

    path = tmp_path / "export.csv"
    path.write_text("nom;prenom\nDUPONT;Jean\n" + "X" * (csv.field_size_limit() + 1) + ";Ana\n")
    dialect = sniff(path)
    _, rows = read_rows(path, dialect)
    with pytest.raises(SourceError, match="at line 3: field larger than field limit"):
        list(rows)
    with pytest.raises(SourceError, match="at line 3: field larger than field limit"):
        _blocks(path, dialect, 0, 5)
