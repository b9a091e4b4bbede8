"""Import a legacy patient export: every row validated, rows with a usable identity sealed and
loaded in batches (a faulty optional field left out with a warning), the others refused with
their line and reason and kept sealed for correction in the "Reprise des données" page;
resumable after a crash, never half-written.

Workers validate and seal batches; the main process writes each batch, its IPPs, its rejects and
the job's checkpoint in one transaction. Re-running the same file resumes after the last
committed batch; a finished file is not imported twice.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import multiprocessing
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction
from django.utils import timezone

from rempart.audit.context import Actor
from rempart.audit.models import Action
from rempart.audit.services import event_record
from rempart.directory.models import Establishment, Practitioner
from rempart.imports.models import ImportJob, ImportLine
from rempart.imports.sources import (
    Block,
    Dialect,
    Mapping,
    PlainScan,
    Row,
    RowReader,
    SourceError,
    Table,
    read_blocks,
    read_header,
    read_rows,
    sniff,
)
from rempart.lib import communes
from rempart.lib.bulkwrite import (
    INDEX,
    BulkWriter,
    Dropped,
    Same,
    binary_block,
    binary_encoder,
    binary_rows_from_columns,
    keys_drop,
    keys_restore,
    uuid_bytes,
)
from rempart.lib.files import private_output
from rempart.lib.identifiers import ipp_step, validate_rpps
from rempart.lib.ids import new_id, new_ids, new_ids_bytes
from rempart.lib.parallel import bounded_imap
from rempart.lib.timings import Timings, cpu_timings
from rempart.patients.models import IppCounter, Patient, PatientIdentifier
from rempart.patients.sealing import PatientSealer
from rempart.patients.validation import clean_for_import
from rempart.records.services.directory import to_complete_id
from rempart.records.services.vigilance import (
    CHECKS,
    COLUMN_KEYS,
    duplicates_find,
    duplicates_find_among,
)

Progress = Callable[[int], None]


@dataclass
class Batch:
    last_line: int
    patients: list[tuple[Any, ...]] | bytes = field(default_factory=list)  # bytes: binary COPY
    count: int = 0
    # The accepted rows' legacy IPPs ("" when none) in line order, as columns (a list of
    # tuples costs three times as much to pickle): each patient id's 16 bytes, IPP and line.
    ipp_ids: bytes = b""
    ipps: list[str] = field(default_factory=list)
    ipp_lines: list[int] = field(default_factory=list)
    # refused lines: (line, reasons, the line's values by column), sealed when written
    rejects: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    warnings: list[tuple[int, str, uuid.UUID]] = field(default_factory=list)  # imported anyway
    # RPPS not in the directory -> the practitioner's id (16 bytes: uuid.UUID pickles slowly)
    new_gps: dict[str, bytes] = field(default_factory=dict)
    # the accepted rows' ids (16 bytes each), and their identity-vigilance key digests by check
    suspects: tuple[bytes, list[bytes]] = field(default_factory=lambda: (b"", []))
    cpu: dict[str, float] = field(default_factory=dict)  # the worker's CPU seconds by phase


@dataclass(frozen=True)
class ImportSummary:
    job_id: uuid.UUID
    imported: int
    rejected: int
    duplicates: int
    reject_file: Path | None
    resumed_from_line: int
    already_done: bool = False
    warned: int = 0
    # Wall seconds of the main process by phase, then the workers' CPU seconds ("workers: ").
    timings: dict[str, float] = field(default_factory=dict)


def _reasons(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return " ; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return " ".join(exc.messages)


# --- workers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    mapping: Mapping
    header: list[str]
    gps: dict[str, uuid.UUID]
    as_copy: bool
    hash_suspects: bool = False  # a first import: duplicates found from digests (_Suspects)
    dialect: Dialect | None = None  # the file's, to read the Blocks of a plain file


_context: _Context | None = None


def _init_worker(context: _Context) -> None:
    global _context
    _context = context
    # No automatic collections: they walked the young objects again and again as each batch
    # made its millions of tuples and lists (4 % of a worker's CPU, 1.2 us a row). The cycles a
    # batch leaves (a refused row's exception and traceback, 36 objects) are collected by _work
    # before the next one: at most one batch of them, 18 MiB when all 5,000 rows are refused.
    gc.disable()


_outside: dict[str, uuid.UUID | str] = {}  # per process: RPPS not in the directory, checked once


def _gp(
    context: _Context, raw: str, new_gps: dict[str, uuid.UUID]
) -> tuple[uuid.UUID | None, list[str]]:
    """The médecin traitant named by an RPPS: from the directory; a well-formed RPPS it does not
    hold becomes an external practitioner to complete (noted in `new_gps`); a malformed one is
    left out (warning)."""
    rpps = raw if raw.isdigit() else "".join(raw.split())
    if not rpps:
        return None, []
    known = context.gps.get(rpps)
    if known is not None:
        return known, []
    checked = _outside.get(rpps)
    if checked is None:
        try:
            validate_rpps(rpps)
        except ValidationError as exc:
            checked = f"gp_rpps: {' '.join(exc.messages)} Médecin traitant écarté."
        else:
            checked = to_complete_id(rpps)
        if len(_outside) < 500_000 and len(rpps) <= 32:  # a long garbage value is not kept
            _outside[rpps] = checked
    if isinstance(checked, str):
        return None, [checked]
    # A town GP the directory does not hold yet: created "to complete", not a fault of the line.
    new_gps[rpps] = checked
    return checked, []


def _line_values(header: list[str], values: list[str]) -> dict[str, str]:
    named = dict(zip(header, values, strict=False))
    named.update({f"colonne {i + 1}": v for i, v in enumerate(values) if i >= len(header)})
    return named


def process_batch(context: _Context, rows: list[Row] | Block) -> Batch:
    """Read (a Block), check and seal rows: the batch the main process writes."""
    timings = cpu_timings()
    checking = time.process_time()
    reader = RowReader(context.mapping, context.header)
    if isinstance(rows, Block):
        if context.dialect is None:
            raise ValueError("a Block is read in the file's dialect")
        last_line, table = rows.last_line, rows.table(context.dialect, reader.width)
    else:
        last_line, table = rows[-1][0] if rows else 0, Table.of_rows(rows, reader.width)
    now = timezone.now()
    today = timezone.localdate(now)
    batch = Batch(last_line=last_line)
    new_gps: dict[str, uuid.UUID] = {}

    def plain_gp(rpps: str) -> uuid.UUID | None:
        gp_id, warnings = _gp(context, rpps, new_gps)
        return None if warnings else gp_id

    # Nearly all rows have nothing to say of them: read and checked column by column.
    plain = reader.plain_rows(table, today, plain_gp)
    columns = plain.columns
    # Each stamped with its own millisecond, as the canaries' ids are (lib/ids.py): ids of one
    # millisecond in thousands would crowd it as no canary placed among them does
    # (tests/test_canary_attack.py's features)
    ids = new_ids(len(plain.lines))
    batch.ipps, batch.ipp_lines = plain.ipps, plain.lines
    for line, values in plain.others:
        try:
            extracted = reader.extract(values)
            gp_id, warnings = _gp(context, extracted.gp_rpps, new_gps)
            data, more = clean_for_import(extracted.data, today=today, gp_id=gp_id)
        except ValidationError as exc:
            batch.rejects.append((line, _reasons(exc), _line_values(context.header, values)))
            continue
        patient_id = new_id()
        ids.append(patient_id)
        for name, value in data.as_model_values().items():
            columns[name].append(value)
        batch.ipps.append(extracted.ipp)
        batch.ipp_lines.append(line)
        if warnings or more:
            batch.warnings.append((line, " ; ".join(warnings + more), patient_id))
    if plain.others:  # in line order, as _assign_ipps gives a legacy IPP met twice
        order = sorted(range(len(ids)), key=batch.ipp_lines.__getitem__)
        batch.ipp_ids = b"".join(ids[k].bytes for k in order)
        batch.ipps = [batch.ipps[k] for k in order]
        batch.ipp_lines = [batch.ipp_lines[k] for k in order]
        batch.rejects.sort(key=lambda reject: reject[0])
        batch.warnings.sort(key=lambda warning: warning[0])
    else:
        batch.ipp_ids = b"".join(patient_id.bytes for patient_id in ids)
    batch.count = len(ids)
    if new_gps:  # a refused line names nobody: its RPPS makes no practitioner
        named = set(columns["gp_id"])
        batch.new_gps = {rpps: pid.bytes for rpps, pid in new_gps.items() if pid in named}
    timings.add("read, check and clean the rows", time.process_time() - checking)
    if context.hash_suspects:
        with timings.phase("hash the identity-vigilance keys"):
            batch.suspects = _suspect_digests(ids, columns)
    sealer = PatientSealer()
    if context.as_copy:
        batch.patients = binary_block(sealer.binary_columns(ids, columns, now, timings))
    else:
        batch.patients = sealer.rows_of_columns(ids, columns, now)
    batch.cpu = timings.seconds
    return batch


def _suspect_digests(
    ids: list[uuid.UUID], columns: dict[str, list[Any]]
) -> tuple[bytes, list[bytes]]:
    """The accepted rows' ids (16 bytes each) and, per identity-vigilance check
    (vigilance.CHECKS), a 64-bit digest of each row's exact key in the same order (0: no key; a
    digest is never 0, its low bit set). The keys are those the check reads once the identity
    record is decrypted (vigilance.COLUMN_KEYS). Kept in memory, never stored.

    The digest is Python's own str hash (SipHash under the run's random key), a tenth of a
    BLAKE2b's cost: the workers are forked from the main process (_batches) and share its key,
    and a pair of equal digests is only a suspect, its keys compared in clear once decrypted
    (duplicates_find_among), so a collision pairs nobody."""
    digests = []
    for keys in COLUMN_KEYS:
        column = np.fromiter(
            (0 if exact is None else hash(exact) | 1 for exact in keys(columns)),
            dtype=np.int64,
            count=len(ids),
        )
        digests.append(column.tobytes())
    return b"".join(patient_id.bytes for patient_id in ids), digests


class _Suspects:
    """The digests of a first import's identity-vigilance keys, batch after batch. Patients
    whose digests are equal are the only ones that may pair up (the table was empty when the
    import began): duplicates_find_among decrypts them alone, not every shared bucket.

    32 bytes a row are kept, and about 50 more for a moment while grouping: the one part of an
    import that grows with the file (under 100 MB for the whole group). Past ROWS the digests
    are dropped and the import searches the buckets as a later import does."""

    ROWS = 2_000_000

    def __init__(self) -> None:
        self._ids: list[bytes] = []
        self._digests: list[list[bytes]] = [[] for _ in CHECKS]
        self._rows = 0
        self.dropped = False

    def add(self, batch: Batch) -> None:
        ids, digests = batch.suspects
        self._rows += len(ids) // 16
        if self.dropped or self._rows > self.ROWS:
            self.dropped, self._ids, self._digests = True, [], [[] for _ in CHECKS]
            return
        self._ids.append(ids)
        for kept, column in zip(self._digests, digests, strict=True):
            kept.append(column)

    def groups(self) -> list[list[list[uuid.UUID]]]:
        ids, self._ids = b"".join(self._ids), []
        out = []
        for check in range(len(CHECKS)):
            digests = np.frombuffer(b"".join(self._digests[check]), dtype=np.uint64)
            self._digests[check] = []
            keyed = np.flatnonzero(digests)
            order = keyed[np.argsort(digests[keyed], kind="stable")]
            del keyed
            ordered = digests[order]
            same = ordered[1:] == ordered[:-1]
            shared = np.flatnonzero(np.r_[same, False] | np.r_[False, same])  # few rows
            groups: dict[int, list[uuid.UUID]] = {}
            for digest, j in zip(ordered[shared].tolist(), order[shared].tolist(), strict=True):
                groups.setdefault(digest, []).append(uuid.UUID(bytes=ids[16 * j : 16 * j + 16]))
            out.append(list(groups.values()))
        return out


def _work(rows: list[Row] | Block) -> Batch:
    assert _context is not None  # noqa: S101  # set by _init_worker
    # Before each batch, the last one's cycles (refused rows' tracebacks: the automatic
    # collections are off, _init_worker) are collected and what lives on (modules, caches
    # filling with the file's names, dates and towns) is frozen out of the collector's scans,
    # which otherwise walked every cached entry again and again as each batch's objects came
    # and went (workers' CPU 12.8 -> 10.8 s at 200,000 rows, alternated four times).
    # Long-lived objects here hold no cycles, so freezing them leaks nothing.
    gc.collect()
    gc.freeze()
    return process_batch(_context, rows)


@contextmanager
def _batches(
    context: _Context, rows: Iterator[list[Row] | Block], workers: int
) -> Iterator[Iterator[Batch]]:
    if workers <= 0:
        yield (process_batch(context, chunk) for chunk in rows)
        return
    connections.close_all()  # forked workers must not share the database socket
    pool_context = multiprocessing.get_context("fork")
    with pool_context.Pool(workers, initializer=_init_worker, initargs=(context,)) as pool:
        yield bounded_imap(pool, _work, rows, ahead=2 * workers)


# --- the job --------------------------------------------------------------------------------------


def _scan(path: Path) -> tuple[str, bool]:
    """The file's SHA-256, and whether its lines split plainly (sources.PlainScan)."""
    digest, scan = hashlib.sha256(), PlainScan()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            scan.update(block)
    return digest.hexdigest(), scan.plain


def _chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def _write_batch(
    actor: Actor,
    job: ImportJob,
    batch: Batch,
    writer: BulkWriter,
    created: set[str],
    given: _GivenIpps | None = None,
) -> None:
    """One transaction: the batch's new external practitioners (those not `created` by an
    earlier batch of this run), its patients, their IPPs, its refused and warned lines, and the
    checkpoint. `given`: the IPPs a first import has given so far (else the table is asked)."""
    new_gps = {r: pid for r, pid in batch.new_gps.items() if r not in created}
    ipps = batch.ipps
    warnings = list(batch.warnings)
    with transaction.atomic():
        if writer.postgres:
            # The batch and its checkpoint commit together, so a commit lost in a server crash
            # loses both and the job redoes the batch: no need to wait for each WAL flush.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        if new_gps:
            Practitioner.objects.bulk_create(
                [Practitioner(id=uuid.UUID(bytes=pid), rpps=rpps, family_name="", given_name="",
                              specialty="", to_complete=True) for rpps, pid in new_gps.items()],
                ignore_conflicts=True,
            )  # fmt: skip
        if job.establishment_id is not None and ipps:
            ipps, renumbered = _assign_ipps(job.establishment_id, batch, given)
            warnings.extend(renumbered)
        if batch.count:
            writer.write(Patient, batch.patients)
        if job.establishment_id is not None:
            _write_identifiers(writer, job.establishment_id, batch.ipp_ids, ipps)
        ImportLine.objects.bulk_create(
            [ImportLine(job=job, line=line, kind=ImportLine.Kind.REFUSED, reasons=reasons,
                        content=values) for line, reasons, values in batch.rejects]
            + [ImportLine(job=job, line=line, kind=ImportLine.Kind.WARNING, reasons=reasons,
                          patient_id=pid) for line, reasons, pid in _merged(warnings)]
        )  # fmt: skip
        imported, rejected, warned = batch.count, len(batch.rejects), len(_merged(warnings))
        event_record(actor, Action.IMPORT, resource_type="ImportJob", resource_id=job.pk,
                     detail={"last_line": batch.last_line, "imported": imported,
                             "rejected": rejected, "warned": warned})  # fmt: skip
        ImportJob.objects.filter(pk=job.pk).update(
            lines_done=batch.last_line,
            imported=job.imported + imported,
            rejected=job.rejected + rejected,
            warned=job.warned + warned,
        )
        job.lines_done = batch.last_line
        job.imported += imported
        job.rejected += rejected
        job.warned += warned
    created.update(new_gps)  # after the commit: a rolled-back batch's practitioners are redone


def _write_identifiers(
    writer: BulkWriter, establishment_id: uuid.UUID, patient_ids: bytes, ipps: list[str]
) -> None:
    """The patients' IPPs: `patient_ids` holds their ids' 16 bytes, in `ipps`' order."""
    ids = [patient_ids[k : k + 16] for k in range(0, len(patient_ids), 16)]
    if not writer.postgres:
        writer.write(PatientIdentifier, [(new_id(), uuid.UUID(bytes=pid), establishment_id, ipp)
                                         for pid, ipp in zip(ids, ipps, strict=True)])  # fmt: skip
        return
    columns: list[Sequence[Any] | Same] = [
        new_ids_bytes(len(ipps)), ids, Same(establishment_id), ipps
    ]  # fmt: skip
    encoders = [uuid_bytes, uuid_bytes, binary_encoder("UUIDField"), binary_encoder("CharField")]
    writer.write(PatientIdentifier, binary_block(binary_rows_from_columns(columns, encoders)))


def _merged(warnings: list[tuple[int, str, uuid.UUID]]) -> list[tuple[int, str, uuid.UUID]]:
    """One warning line per source line (the IPP renumbering joins the fields left out)."""
    by_line: dict[int, tuple[int, str, uuid.UUID]] = {}
    for line, reasons, pid in warnings:
        if line in by_line:
            reasons = f"{by_line[line][1]} ; {reasons}"
        by_line[line] = (line, reasons, pid)
    return sorted(by_line.values(), key=lambda w: w[0])


class _GivenIpps:
    """The IPPs a first import has given, batch after batch, as 64-bit hashes (8 bytes an IPP)
    in sorted arrays of doubling sizes: which of a batch's legacy IPPs may be taken is a binary
    search, where asking the table scans all of it (PostgreSQL reads the whole table for an
    array of 5,000 IPPs rather than probe the index 5,000 times), a cost that grew with every
    batch. A hash met is confirmed in the table, so a collision renumbers nobody. Per process:
    str hashes are salted per run, and only the main process holds them."""

    def __init__(self) -> None:
        self._levels: list[np.ndarray] = []

    @staticmethod
    def _keys(ipps: Sequence[str]) -> np.ndarray:
        return np.fromiter(map(hash, ipps), dtype=np.int64, count=len(ipps))

    def maybe_taken(self, ipps: Sequence[str]) -> list[str]:
        """Those of `ipps` whose hash is one of a given IPP's (every taken one among them)."""
        keys = self._keys(ipps)
        met = np.zeros(len(keys), dtype=bool)
        for level in self._levels:
            at = np.minimum(np.searchsorted(level, keys), len(level) - 1)
            met |= level[at] == keys
        return [ipp for ipp, hit in zip(ipps, met.tolist(), strict=True) if hit]

    def add(self, ipps: Sequence[str]) -> None:
        if not ipps:
            return
        self._levels.append(np.sort(self._keys(ipps)))
        while len(self._levels) > 1 and len(self._levels[-2]) <= 2 * len(self._levels[-1]):
            last = self._levels.pop()
            self._levels[-1] = np.sort(np.concatenate((self._levels[-1], last)))


def _taken_ipps(establishment_id: uuid.UUID, legacy: list[str]) -> set[str]:
    """Those of `legacy` the establishment has already given."""
    if connection.vendor != "postgresql":  # SQLite (the demo): a few at a time
        here = PatientIdentifier.objects.filter(establishment_id=establishment_id)
        taken: set[str] = set()
        for start in range(0, len(legacy), 500):
            chunk = legacy[start : start + 500]
            taken.update(here.filter(ipp__in=chunk).values_list("ipp", flat=True))
        return taken
    with connection.cursor() as cursor:  # one array parameter, not thousands of them
        cursor.execute(
            f"SELECT ipp FROM {PatientIdentifier._meta.db_table} "  # noqa: S608  # model name
            "WHERE establishment_id = %s AND ipp = ANY(%s)",
            [establishment_id, legacy],
        )
        return {row[0] for row in cursor.fetchall()}


_RENUMBERED = "ipp: IPP d'origine déjà attribué à un autre patient : nouveau numéro."


def _assign_ipps(
    establishment_id: uuid.UUID, batch: Batch, given: _GivenIpps | None = None
) -> tuple[list[str], list[tuple[int, str, uuid.UUID]]]:
    """The IPP of each of the batch's patients (batch.ipps' order): the legacy one kept when
    free; a fresh one from the counter otherwise, and a warning when a legacy IPP was already
    given to another patient (the patient comes in all the same). `given`: the IPPs given so
    far by a first import, asked before the table."""
    legacy = [ipp for ipp in batch.ipps if ipp]
    if given is not None:
        legacy = given.maybe_taken(legacy)
    taken = _taken_ipps(establishment_id, legacy) if legacy else set()
    counter, _ = IppCounter.objects.select_for_update().get_or_create(
        establishment_id=establishment_id
    )
    kept = list(batch.ipps)
    renumbered: list[tuple[int, str, uuid.UUID]] = []
    seen: set[str] = set()
    for k, ipp in enumerate(kept):
        if ipp:
            if ipp in taken or ipp in seen:
                patient_id = uuid.UUID(bytes=batch.ipp_ids[16 * k : 16 * k + 16])
                renumbered.append((batch.ipp_lines[k], _RENUMBERED, patient_id))
                kept[k] = ""
            else:
                seen.add(ipp)
    counter.last_value = max([counter.last_value, *(int(ipp) for ipp in seen if ipp.isdigit())])
    for k, ipp in enumerate(kept):
        if not ipp:
            counter.last_value += ipp_step()
            kept[k] = f"{counter.last_value:010d}"
    counter.save(update_fields=["last_value"])
    if given is not None:
        given.add(kept)
    return kept, renumbered


# Kept during a first import: the legacy IPPs are looked up in it batch by batch (_assign_ipps).
_KEPT_WHILE_LOADING = frozenset({"ipp_unique_in_establishment"})


def _defer_patient_indexes(job: ImportJob) -> None:
    """A first import into an empty patient table (PostgreSQL) loads as pg_restore does: the
    patient and IPP tables without their keys, indexes and foreign keys (but the one the IPP
    numbering reads), put back once at the end: a sort per index and one join per foreign key
    instead of an index insert per row and a trigger check per IPP. What was dropped is
    committed with the job, so a crash resumes without them and still puts them back. A first
    import is the move from the legacy system, before the group works in Rempart."""
    if connection.vendor != "postgresql" or Patient.objects.exists():
        return
    tables = [Patient._meta.db_table, PatientIdentifier._meta.db_table]
    with transaction.atomic(), connection.cursor() as cursor:
        dropped = keys_drop(cursor, tables, keep=_KEPT_WHILE_LOADING)
        job.deferred_indexes = [d.as_list() for d in dropped]
        ImportJob.objects.filter(pk=job.pk).update(deferred_indexes=job.deferred_indexes)


def _rebuild_patient_indexes(job: ImportJob, timings: Timings) -> None:
    if not job.deferred_indexes:
        return
    patients = Patient._meta.db_table
    dropped = [  # an entry of two is an index deferred by an earlier version (name, definition)
        Dropped(*entry) if len(entry) == 4 else Dropped(INDEX, patients, *entry)
        for entry in job.deferred_indexes
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        keys_restore(cursor, dropped, timings)
        with timings.phase("ANALYZE"):
            for table in (patients, PatientIdentifier._meta.db_table):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
        ImportJob.objects.filter(pk=job.pk).update(deferred_indexes=[])
    job.deferred_indexes = []


def import_file(
    path: Path,
    *,
    mapping_path: Path | None = None,
    establishment_finess: str | None = None,
    reject_path: Path | None = None,
    batch_size: int = 5000,
    workers: int = 2,
    progress: Progress | None = None,
    actor: Actor | None = None,
) -> ImportSummary:
    """Import `path`; each committed batch records an audit event with its job and counts."""
    actor = actor or Actor.system("import")
    if not path.is_file():
        raise SourceError(f"{path} is not a readable file")
    mapping = Mapping.load(mapping_path)
    dialect = sniff(path)
    header = read_header(path, dialect)
    mapping.check_header(header)
    establishment = None
    if establishment_finess:
        establishment = Establishment.objects.filter(finess=establishment_finess).first()
        if establishment is None:
            raise SourceError(f"no establishment with FINESS {establishment_finess}")
    sha, plain = _scan(path)
    job, _ = ImportJob.objects.get_or_create(
        file_sha256=sha,
        mapping=mapping.name,
        defaults={"file_name": path.name[:255], "establishment": establishment},
    )
    if job.status == ImportJob.Status.DONE:
        return ImportSummary(job.id, job.imported, job.rejected, job.duplicates, None,
                             job.lines_done, already_done=True, warned=job.warned)  # fmt: skip
    resumed_from = job.lines_done
    if not resumed_from:
        _defer_patient_indexes(job)
    # A first import run through in one go sees every patient that may pair up with another.
    first = bool(job.deferred_indexes) and not resumed_from
    suspects = _Suspects() if first else None
    given = _GivenIpps() if first and job.establishment_id is not None else None
    gps = dict(Practitioner.objects.values_list("rpps", "id"))
    context = _Context(mapping, header, gps, connection.vendor == "postgresql",
                       hash_suspects=suspects is not None, dialect=dialect)  # fmt: skip
    # A plain file is cut into blocks of lines read by the workers (sources.read_blocks);
    # any other is parsed here.
    pending: Iterator[list[Row] | Block]
    if plain:
        pending = read_blocks(path, resumed_from, batch_size)
    else:
        rows = read_rows(path, dialect)[1]
        pending = _chunks(((n, v) for n, v in rows if n > resumed_from), batch_size)
    writer = BulkWriter()
    created: set[str] = set()
    timings, cpu = Timings(), Timings()
    communes.load()  # read once here, shared by the forked workers
    # What is loaded by now (modules, the directory's practitioners) lives as long as the
    # import: frozen out of the collector's scans here and in the forked workers (main process
    # CPU 3.0 -> 2.4-2.7 s at 200,000 rows, alternated twice).
    gc.collect()
    gc.freeze()
    try:
        with _batches(context, pending, workers) as batches:
            while True:
                with timings.phase("parse the file, wait for the workers"):
                    batch = next(batches, None)
                if batch is None:
                    break
                with timings.phase("write the batches (COPY, IPPs, lines, events)"):
                    _write_batch(actor, job, batch, writer, created, given)
                cpu.merge(batch.cpu)
                if suspects is not None:
                    suspects.add(batch)
                if progress is not None:
                    progress(batch.count + len(batch.rejects))
    finally:
        gc.unfreeze()  # for a caller that lives on (the tests)
    _rebuild_patient_indexes(job, timings)
    with timings.phase("find potential duplicates"):
        if suspects is not None and not suspects.dropped:
            duplicates = duplicates_find_among(actor=actor, suspects=suspects.groups())
        else:
            duplicates = duplicates_find(actor=actor, since=job.started_at, workers=workers)
    timings.merge({f"workers: {name}": seconds for name, seconds in cpu.seconds.items()})
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.DONE, finished_at=timezone.now(), duplicates=duplicates
    )
    # The refused lines stay sealed in the database; a clear file only when asked for.
    written = write_reject_file(job, path, reject_path) if reject_path and job.rejected else None
    return ImportSummary(job.id, job.imported, job.rejected, duplicates, written, resumed_from,
                         warned=job.warned, timings=timings.seconds)  # fmt: skip


def write_reject_file(job: ImportJob, source: Path, target: Path) -> Path:
    """The refused lines, as they were, with their line number and reasons (mode 0600: the file
    holds patient data in clear, like the export it comes from)."""
    refused = ImportLine.objects.filter(job=job, kind=ImportLine.Kind.REFUSED)
    reasons = dict(refused.values_list("line", "reasons"))
    dialect = sniff(source)
    header, rows = read_rows(source, dialect)
    with private_output(target) as handle:
        out = csv.writer(handle, delimiter=";")
        out.writerow(["ligne", "motif", *header])
        for line, values in rows:
            if line in reasons:
                out.writerow([line, reasons[line], *values])
    return target
