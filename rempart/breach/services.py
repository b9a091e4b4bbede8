"""Running an analysis: the DPO, the security officer or the console; the sample read in
memory and never stored; the report and the matched patients kept; the run audited (counts
only)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from rempart.access import policy
from rempart.audit.context import SYSTEM_ROLE, Actor
from rempart.audit.models import Action
from rempart.audit.services import event_record
from rempart.breach.analyse import Progress, analyse
from rempart.breach.models import BreachAnalysis, LeakedPatient
from rempart.breach.readers import SampleError, read_sample
from rempart.directory.models import Role

ANALYSTS = frozenset({Role.DPO, Role.SECURITY_OFFICER, SYSTEM_ROLE})
MAX_BYTES = 512 * 2**20


def breach_analyse(*, actor: Actor, data: bytes, file_name: str,
                   progress: Progress | None = None) -> BreachAnalysis:  # fmt: skip
    """Analyse a sample; raises SampleError (a clear message, nothing stored) on a bad file."""
    policy.authorise_role(actor, ANALYSTS)
    if len(data) > MAX_BYTES:
        raise SampleError("fichier trop volumineux (512 Mio au plus)")
    sample = read_sample(data)
    if not sample.rows:
        raise SampleError("aucune ligne de données")
    result = analyse(sample, file_name=file_name[:255], data=data, progress=progress)
    with transaction.atomic():
        user = get_user_model().objects.filter(pk=actor.user_id).first() if actor.user_id else None
        analysis = BreachAnalysis.objects.create(
            created_by=user, username=actor.username, file_name=file_name[:255],
            file_sha256=result.report["file"]["sha256"], rows=len(sample.rows),
            report=result.report,
        )  # fmt: skip
        seen: set[object] = set()
        leaked = []
        for match in result.matches:
            if match.patient_id in seen:
                continue
            seen.add(match.patient_id)
            leaked.append(LeakedPatient(
                analysis=analysis, patient_id=match.patient_id, match=match.kind,
                categories=sorted(result.rows[match.row].categories),
                fields_agreeing=sorted(match.agree)))  # fmt: skip
        LeakedPatient.objects.bulk_create(leaked, batch_size=5000)
        matches = result.report["matches"]
        event_record(actor, Action.BREACH, resource_type="BreachAnalysis",
                     resource_id=analysis.pk,
                     detail={"rows": len(sample.rows), "exact": matches["exact"],
                             "partial": matches["partial"], "patients": matches["patients"],
                             "source": result.report["source"]["verdict"],
                             "file_sha256": analysis.file_sha256})  # fmt: skip
    return analysis
