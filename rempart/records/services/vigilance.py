"""Identity vigilance: find records that may be one person, for a human to resolve.

Two patients sharing an INS, or the same traits (birth name, first given name, birth date, sex),
become a DuplicateCandidate. Nothing is ever merged here. Candidates come from blind-index
buckets with more than one row; only those rows are decrypted, bucket batch by bucket batch.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

from django.db import connection, connections

from rempart.access import policy
from rempart.audit.context import SYSTEM_ROLE, Actor
from rempart.audit.models import Action
from rempart.audit.services import event_record
from rempart.lib.caching import ColumnMemo
from rempart.lib.normalise import fold_name
from rempart.lib.parallel import bounded_imap
from rempart.patients.models import DuplicateCandidate, Patient
from rempart.vault.fields import EncryptedField

BUCKETS_PER_QUERY = 2000
Key = Callable[[dict[str, Any]], str | None]
Task = tuple[int, list[int]]  # (check, buckets)
Found = tuple[int, int, list[tuple[uuid.UUID, uuid.UUID]]]  # (check, bucket count, pairs)


def _ins_key(identity: dict[str, Any]) -> str | None:
    nir = identity.get("nir")
    return str(nir) if nir else None


def _traits_key(identity: dict[str, Any]) -> str | None:
    name, given = identity.get("birth_name"), identity.get("first_given_name")
    if not name or not given or not identity.get("birth_date"):
        return None
    return "|".join(
        (fold_name(name), fold_name(given), identity["birth_date"], identity.get("sex", ""))
    )


CHECKS: tuple[tuple[str, str, Key], ...] = (
    ("bidx_nir", DuplicateCandidate.Reason.SAME_INS, _ins_key),
    ("bidx_name_birth", DuplicateCandidate.Reason.SAME_TRAITS, _traits_key),
)


# The same keys over patients held column by column (model attribute -> one value per row, as a
# bulk load has them: dates as dates, empty values None), in CHECKS' order: what each key gives of
# the identity record those values make (tests/test_vigilance.py compares them).
ColumnKeys = Callable[[Mapping[str, Sequence[Any]]], list[str | None]]


def _ins_keys(columns: Mapping[str, Sequence[Any]]) -> list[str | None]:
    return [str(nir) if nir else None for nir in columns["nir"]]


_GIVEN_FOLDED = ColumnMemo(lambda name: fold_name(name) if name else None)  # a few hundred


def _traits_keys(columns: Mapping[str, Sequence[Any]]) -> list[str | None]:
    return [
        "|".join((fold_name(name), given, born.isoformat(), sex or ""))
        if name and given is not None and born
        else None
        for name, given, born, sex in zip(
            columns["birth_name"], _GIVEN_FOLDED(columns["first_given_name"]),
            columns["birth_date"], columns["sex"], strict=True,
        )
    ]  # fmt: skip


COLUMN_KEYS: tuple[ColumnKeys, ...] = (_ins_keys, _traits_keys)


def _shared_buckets(column: str, since: dt.datetime | None) -> Iterator[list[int]]:
    table = Patient._meta.db_table
    recent = "AND max(created_at) >= %s" if since is not None else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL "  # noqa: S608  # model names
            f"GROUP BY {column} HAVING count(*) > 1 {recent}",
            [since] if since is not None else [],
        )
        while batch := cursor.fetchmany(BUCKETS_PER_QUERY):
            yield [row[0] for row in batch]


def _pairs(task: Task) -> Found:
    """The pairs of patients of these buckets that truly share the check's key (decrypted)."""
    check, buckets = task
    column = CHECKS[check][0]
    rows = Patient.objects.filter(**{f"{column}__in": buckets}).values_list("id", "identity")
    return check, len(buckets), _exact_pairs(check, rows)


def _exact_pairs(
    check: int, rows: Iterable[tuple[uuid.UUID, Any]]
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """The pairs among these (id, sealed identity) rows that share the check's exact key."""
    key = CHECKS[check][2]
    field = Patient._meta.get_field("identity")
    assert isinstance(field, EncryptedField)  # noqa: S101  # model definition
    groups: dict[str, list[uuid.UUID]] = defaultdict(list)
    for patient_id, sealed in rows:
        if sealed is None:
            continue
        identity = field.open_value(patient_id, cast(bytes, sealed))
        exact = key(identity)
        if exact is not None:
            groups[exact].append(patient_id)
    pairs: list[tuple[uuid.UUID, uuid.UUID]] = []
    for ids in groups.values():
        ids.sort()
        pairs.extend((a, b) for i, a in enumerate(ids) for b in ids[i + 1 :])
    return pairs


@contextmanager
def _mapper(workers: int) -> Iterator[Callable[[Iterator[Task]], Iterator[Found]]]:
    if workers <= 0 or connection.vendor != "postgresql":
        yield lambda tasks: map(_pairs, tasks)
        return
    connections.close_all()  # forked workers open their own connections
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield lambda tasks: bounded_imap(pool, _pairs, tasks, ahead=2 * workers)


def duplicates_find(
    *,
    actor: Actor,
    since: dt.datetime | None = None,
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Record every pair of patients that share an INS or traits (with at least one patient
    created after `since`, when given). Returns how many new candidates were recorded.
    With `workers` (PostgreSQL), buckets are decrypted in that many forked processes. It opens
    every identity that shares a bucket: console and imports only (the system actor)."""
    if actor.role != SYSTEM_ROLE:
        raise policy.AccessDenied()
    before = DuplicateCandidate.objects.count()
    tasks = (
        (check, buckets)
        for check, (column, _, _) in enumerate(CHECKS)
        for buckets in _shared_buckets(column, since)
    )
    with _mapper(workers) as mapped:
        for check, buckets, pairs in mapped(tasks):
            _record(check, pairs)
            if progress is not None:
                progress(buckets)
    return _recorded(actor, before)


def duplicates_find_among(*, actor: Actor, suspects: Sequence[Sequence[list[uuid.UUID]]]) -> int:
    """duplicates_find, when every patient that may pair up with another is known: `suspects`
    holds, for each check (CHECKS' order), groups of patients whose exact keys may be equal (a
    first import hashes them as it reads them: in memory, never stored). Only those patients are
    decrypted, a query taking whole groups; the pairs are those of duplicates_find."""
    if actor.role != SYSTEM_ROLE:
        raise policy.AccessDenied()
    before = DuplicateCandidate.objects.count()
    for check, groups in enumerate(suspects):
        chunk: list[uuid.UUID] = []
        for k, group in enumerate(groups):
            chunk.extend(group)
            if len(chunk) >= BUCKETS_PER_QUERY or k == len(groups) - 1:
                rows = Patient.objects.filter(pk__in=chunk).values_list("id", "identity")
                _record(check, _exact_pairs(check, rows))
                chunk = []
    return _recorded(actor, before)


def _record(check: int, pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
    reason = CHECKS[check][1]
    DuplicateCandidate.objects.bulk_create(
        [DuplicateCandidate(patient_a_id=a, patient_b_id=b, reason=reason) for a, b in pairs],
        ignore_conflicts=True,
    )


def _recorded(actor: Actor, before: int) -> int:
    found = DuplicateCandidate.objects.count() - before
    event_record(actor, Action.SEARCH, resource_type="DuplicateCandidate",
                 detail={"criteria": ["same_ins", "same_traits"], "pairs": found})  # fmt: skip
    return found
