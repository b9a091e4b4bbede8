"""Reads of the access floor for the officers' pages."""

from __future__ import annotations

from rempart.access import policy
from rempart.access.models import BreakGlass, Review
from rempart.audit.context import Actor
from rempart.audit.models import Action, Purpose
from rempart.audit.services import event_record
from rempart.directory.models import Role


def break_glass_queue(*, actor: Actor) -> list[BreakGlass]:
    """The declarations waiting for the DPO, justifications opened: a read about those
    patients, recorded like any other."""
    policy.authorise_role(actor, {Role.DPO})
    pending = list(
        BreakGlass.objects.filter(review=Review.PENDING).select_related("user").order_by("id")
    )
    event_record(actor.for_purpose(Purpose.SECURITY), Action.READ, resource_type="BreakGlass",
                 patients=[b.patient_id for b in pending],
                 detail={"count": len(pending)})  # fmt: skip
    return pending
