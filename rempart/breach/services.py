"""Running an analysis: the DPO, the security officer or the console; the sample read in
memory and never stored; the report and the matched patients kept; the run audited (counts
only)."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import orjson
from django.contrib.auth import get_user_model
from django.db import connection, transaction

from rempart.access import policy
from rempart.audit.context import SYSTEM_ROLE, Actor
from rempart.audit.models import Action
from rempart.audit.services import event_record
from rempart.breach.analyse import Analysis, Progress, analyse, paused_gc
from rempart.breach.models import BreachAnalysis, LeakedPatient
from rempart.breach.readers import SampleError, read_sample
from rempart.breach.traits import category_names, field_names
from rempart.directory.models import Role

ANALYSTS = frozenset({Role.DPO, Role.SECURITY_OFFICER, SYSTEM_ROLE})
MAX_BYTES = 512 * 2**20


def breach_analyse(*, actor: Actor, data: bytes, file_name: str,
                   progress: Progress | None = None) -> BreachAnalysis:  # fmt: skip
    """Analyse a sample; raises SampleError (a clear message, nothing stored) on a bad file."""
    policy.authorise_role(actor, ANALYSTS)
    if len(data) > MAX_BYTES:
        raise SampleError("fichier trop volumineux (512 Mio au plus)")
    with paused_gc():  # a million rows: millions of small containers, no cycles (analyse.py)
        sample = read_sample(data)
        if not sample.rows:
            raise SampleError("aucune ligne de données")
        result = analyse(sample, file_name=file_name[:255], data=data, progress=progress)
        return _store(actor, file_name, sample, result)


def _store(actor: Actor, file_name: str, sample: Any, result: Analysis) -> BreachAnalysis:
    with transaction.atomic():
        user = get_user_model().objects.filter(pk=actor.user_id).first() if actor.user_id else None
        analysis = BreachAnalysis.objects.create(
            created_by=user, username=actor.username, file_name=file_name[:255],
            file_sha256=result.report["file"]["sha256"], rows=len(sample.rows),
            report=result.report,
        )  # fmt: skip
        _store_patients(analysis, result)
        matches = result.report["matches"]
        event_record(actor, Action.BREACH, resource_type="BreachAnalysis",
                     resource_id=analysis.pk,
                     detail={"rows": len(sample.rows), "exact": matches["exact"],
                             "partial": matches["partial"], "patients": matches["patients"],
                             "source": result.report["source"]["verdict"],
                             "file_sha256": analysis.file_sha256})  # fmt: skip
    return analysis


def _store_patients(analysis: BreachAnalysis, result: Analysis) -> None:
    """One row per matched patient (its first row when a patient appears twice): COPY on
    PostgreSQL (a whole-group sample holds 700,000 of them), the ORM elsewhere."""
    matches = result.matches
    if not len(matches):
        return
    # In id order (record positions are): the indexes on patient_id are then filled in order.
    by_patient = np.argsort(matches.at, kind="stable")
    ordered = matches.at[by_patient]
    first = by_patient[np.concatenate(([True], ordered[1:] != ordered[:-1]))]
    shown = result.traits.categories[matches.rows[first]]
    agree = matches.agree[first]
    exact = matches.exact[first]
    ids = result.records.ids[matches.at[first]]
    shown_json = {c: orjson.dumps(sorted(category_names(c))).decode()
                  for c in np.unique(shown).tolist()}  # fmt: skip
    agree_json = {a: orjson.dumps(sorted(field_names(a))).decode()
                  for a in np.unique(agree).tolist()}  # fmt: skip
    kinds = ("partial", "exact")
    if connection.vendor != "postgresql":
        LeakedPatient.objects.bulk_create([
            LeakedPatient(analysis=analysis, patient_id=uuid.UUID(bytes=ids[i].tobytes()),
                          match=kinds[int(exact[i])], categories=orjson.loads(shown_json[c]),
                          fields_agreeing=orjson.loads(agree_json[a]))
            for i, (c, a) in enumerate(zip(shown.tolist(), agree.tolist(), strict=True))
        ], batch_size=2000)  # fmt: skip
        return
    table = LeakedPatient._meta.db_table
    analysis_id = str(analysis.pk)
    columns = (exact.tolist(), shown.tolist(), agree.tolist())
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            f"COPY {table} (analysis_id, patient_id, match, categories, fields_agreeing) FROM STDIN"
        ) as copy,
    ):
        # In blocks: the server stores one while the next is written.
        for start in range(0, len(ids), 50_000):
            stop = min(start + 50_000, len(ids))
            copy.write("".join(
                f"{analysis_id}\t{ids[i].tobytes().hex()}\t{kinds[columns[0][i]]}\t"
                f"{shown_json[columns[1][i]]}\t{agree_json[columns[2][i]]}\n"
                for i in range(start, stop)
            ).encode())  # fmt: skip
