"""Reads of the trail for the officers' pages: aggregates and health, no patient data."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, Max, Min
from django.db.models.functions import TruncDate
from django.utils import timezone

from rempart.audit.models import Action, Checkpoint, Event, Link

PATIENT_ACTIONS = (Action.READ, Action.SEARCH, Action.CREATE, Action.UPDATE, Action.REPORT)


@dataclass(frozen=True)
class DailyAccesses:
    days: list[dt.date]
    by_role: dict[str, list[int]]  # role -> count per day
    by_establishment: dict[str, list[int]]  # establishment id (str, "" for none) -> per day


def accesses_by_day(*, days: int = 14) -> DailyAccesses:
    """Accesses to patient data per day, by role and by establishment, over the last `days`."""
    today = timezone.localdate()
    first = today - dt.timedelta(days=days - 1)
    since = timezone.make_aware(dt.datetime.combine(first, dt.time()))
    events = Event.objects.filter(at__gte=since, action__in=PATIENT_ACTIONS).annotate(
        day=TruncDate("at", tzinfo=timezone.get_current_timezone())
    )
    axis = [first + dt.timedelta(days=i) for i in range(days)]
    position = {d: i for i, d in enumerate(axis)}
    by_role: dict[str, list[int]] = defaultdict(lambda: [0] * days)
    for row in events.values("day", "role").annotate(n=Count("id")):
        if row["day"] in position:
            by_role[row["role"]][position[row["day"]]] += row["n"]
    by_place: dict[str, list[int]] = defaultdict(lambda: [0] * days)
    for row in events.values("day", "establishment_id").annotate(n=Count("id")):
        if row["day"] in position:
            key = str(row["establishment_id"] or "")
            by_place[key][position[row["day"]]] += row["n"]
    return DailyAccesses(axis, dict(by_role), dict(by_place))


@dataclass(frozen=True)
class TrailHealth:
    events: int
    sealed: int
    last_checkpoint: dt.datetime | None
    oldest_unsealed: dt.datetime | None
    last_verify: Event | None


def trail_health() -> TrailHealth:
    last = Checkpoint.objects.order_by("-seq").first()
    watermark = last.watermark if last is not None else 0
    linked = Link.objects.filter(event_id__gt=watermark).values("event_id")
    pending = Event.objects.filter(id__gt=watermark).exclude(id__in=linked)
    return TrailHealth(
        events=Event.objects.aggregate(n=Max("id"))["n"] or 0,
        sealed=last.seq if last is not None else 0,
        last_checkpoint=last.signed_at if last is not None else None,
        oldest_unsealed=pending.aggregate(oldest=Min("at"))["oldest"],
        last_verify=Event.objects.filter(action=Action.AUDIT).order_by("-id").first(),
    )
