"""Identity vigilance: find records that may be one person, for a human to resolve.

Two patients sharing an INS, or the same traits (birth name, first given name, birth date, sex),
become a DuplicateCandidate. Nothing is ever merged here. Candidates come from blind-index
buckets with more than one row; only those rows are decrypted, bucket batch by bucket batch.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any, cast

from django.db import connection

from rempart.lib.normalise import fold_name
from rempart.patients.models import DuplicateCandidate, Patient
from rempart.vault.fields import EncryptedField
from rempart.vault.keystore import get_vault

BUCKETS_PER_QUERY = 2000
Key = Callable[[dict[str, Any]], str | None]


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
    ("bidx_identity", DuplicateCandidate.Reason.SAME_TRAITS, _traits_key),
)


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


def duplicates_find(
    *, since: dt.datetime | None = None, progress: Callable[[int], None] | None = None
) -> int:
    """Record every pair of patients that share an INS or traits (with at least one patient
    created after `since`, when given). Returns how many new candidates were recorded."""
    field = Patient._meta.get_field("identity")
    assert isinstance(field, EncryptedField)  # noqa: S101  # model definition
    cipher = get_vault().cipher
    before = DuplicateCandidate.objects.count()
    for column, reason, key in CHECKS:
        for buckets in _shared_buckets(column, since):
            rows = Patient.objects.filter(**{f"{column}__in": buckets}).values_list(
                "id", "identity"
            )
            groups: dict[str, list[uuid.UUID]] = defaultdict(list)
            for patient_id, sealed in rows:
                if sealed is None:
                    continue
                identity = json.loads(
                    cipher.open(
                        field.category, cast(bytes, sealed), field.associated_data(patient_id)
                    )
                )
                exact = key(identity)
                if exact is not None:
                    groups[exact].append(patient_id)
            pairs = [
                DuplicateCandidate(patient_a_id=a, patient_b_id=b, reason=reason)
                for ids in groups.values()
                if len(ids) > 1
                for i, a in enumerate(sorted(ids))
                for b in sorted(ids)[i + 1 :]
            ]
            DuplicateCandidate.objects.bulk_create(pairs, ignore_conflicts=True)
            if progress is not None:
                progress(len(buckets))
    return DuplicateCandidate.objects.count() - before
