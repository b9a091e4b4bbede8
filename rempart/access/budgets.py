"""Read budgets: distinct patients (and searches) each user touched this hour, today and in the
last 7 days, counted where every app process sees them: Redis when REDIS_URL is set, the
database otherwise; and how an account's day compares with the others of its role."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from rempart.access.models import PatientSeen

logger = logging.getLogger(__name__)

_LOCK_CLASS = 0x5EE1  # advisory lock space of the budget counters (the key is the user id)


@dataclass(frozen=True)
class Usage:
    hour: int
    day: int
    week: int


def _windows(now: dt.datetime) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    local = timezone.localtime(now)
    hour = local.replace(minute=0, second=0, microsecond=0)
    day = hour.replace(hour=0)
    return hour, day, day - dt.timedelta(days=6)


@lru_cache(maxsize=1)
def _redis() -> Any:
    import redis

    # Short timeouts: a Redis that is down or cut off must not hold the page, the budget falls
    # back to the database at once.
    return redis.Redis.from_url(str(settings.REDIS_URL), socket_connect_timeout=0.5,
                                socket_timeout=0.5)  # fmt: skip


def _redis_down(exc: Exception) -> None:
    """Redis does not answer: the budgets are counted in the database (never "no budget"), and
    the security officer is told once an hour."""
    from rempart.access.alerts import alert_once
    from rempart.access.models import AlertKind, Severity
    from rempart.directory.models import Role

    logger.warning(
        "Redis unreachable (%s): read budgets counted in the database", type(exc).__name__
    )
    alert_once(since=timezone.now() - dt.timedelta(hours=1), user_id=None,
               severity=Severity.WARNING, kind=AlertKind.BUDGET, audience=Role.SECURITY_OFFICER,
               message="Redis injoignable : les budgets de lecture sont comptés dans la base de "
                       "données le temps de la panne ; les comptes repartent de ce qu'elle a "
                       "noté.")  # fmt: skip


def touch(user_id: int, items: Sequence[uuid.UUID], now: dt.datetime | None = None) -> Usage:
    """Count `items` (patient ids, or a fresh id per search) as seen by the user; return how
    many distinct items the user has touched this hour and today."""
    now = now or timezone.now()
    hour, day, week = _windows(now)
    if settings.REDIS_URL:
        import redis

        try:
            return _touch_redis(user_id, items, hour, day)
        except redis.RedisError as exc:
            _redis_down(exc)
    return _touch_database(user_id, items, hour, day, week, now)


def _touch_redis(user_id: int, items: Sequence[uuid.UUID], hour: dt.datetime,
             day: dt.datetime) -> Usage:  # fmt: skip
    hour_key = f"rempart:seen:{user_id}:{hour:%Y%m%d%H}"
    day_key = _day_key(user_id, day)
    days = [_day_key(user_id, day - dt.timedelta(days=k)) for k in range(7)]
    pipe = _redis().pipeline()
    if items:
        members = [str(i) for i in items]
        pipe.sadd(hour_key, *members).expire(hour_key, 7200)
        pipe.sadd(day_key, *members).expire(day_key, 8 * 86400)
    pipe.scard(hour_key).scard(day_key)
    pipe.sunionstore(f"rempart:seen:{user_id}:week", days).expire(
        f"rempart:seen:{user_id}:week", 60
    )
    *_, hour_count, day_count, week_count, _expired = pipe.execute()
    return Usage(int(hour_count), int(day_count), int(week_count))


def _touch_database(user_id: int, items: Sequence[uuid.UUID], hour: dt.datetime,
                    day: dt.datetime, week: dt.datetime, now: dt.datetime) -> Usage:  # fmt: skip
    if connection.vendor == "postgresql":
        return _touch_postgres(user_id, items, hour, day, week, now)
    if items:
        PatientSeen.objects.bulk_create(
            [PatientSeen(user_id=user_id, patient_id=i, hour=hour, seen_at=now) for i in items],
            ignore_conflicts=True,
        )
    mine = PatientSeen.objects.filter(user_id=user_id)
    return Usage(
        hour=mine.filter(hour=hour).count(),
        day=mine.filter(hour__gte=day).values("patient_id").distinct().count(),
        week=mine.filter(hour__gte=week).values("patient_id").distinct().count(),
    )


def _day_key(user_id: int, day: dt.datetime) -> str:
    return f"rempart:seen:{user_id}:{day:%Y%m%d}"


def _touch_postgres(
    user_id: int, items: Sequence[uuid.UUID], hour: dt.datetime, day: dt.datetime,
    week: dt.datetime, now: dt.datetime,
) -> Usage:  # fmt: skip
    """One insert and one count, without waiting for the WAL flush: a counter that loses its last
    few hundred milliseconds in a server crash lets a scraper see a record or two more, while
    every page saves a flush. A transaction-scoped advisory lock per user makes the insert and
    the count one step: two parallel requests of one account would otherwise each count its own
    uncommitted row and not the other's, and both pass at the budget's edge."""
    table = PatientSeen._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, user_id])
        if items:
            cursor.execute(
                f"INSERT INTO {table} (user_id, patient_id, hour, seen_at) "
                "SELECT %s, unnest(%s::uuid[]), %s, %s ON CONFLICT DO NOTHING",
                [user_id, list(items), hour, now],
            )
        cursor.execute(
            f"SELECT count(*) FILTER (WHERE hour = %s), "  # noqa: S608
            "count(DISTINCT patient_id) FILTER (WHERE hour >= %s), count(DISTINCT patient_id) "
            f"FROM {table} WHERE user_id = %s AND hour >= %s",
            [hour, day, user_id, week],
        )
        hour_count, day_count, week_count = cursor.fetchone()
    return Usage(int(hour_count), int(day_count), int(week_count))


def limits(role: str) -> tuple[int, int, int]:
    """(hour, day, week) budgets of the role; a (hour, day) setting gets 3 days' worth a week."""
    budget = tuple(settings.REMPART_READ_BUDGETS.get(role, (0, 0, 0)))
    hour, day = int(budget[0]), int(budget[1])
    return hour, day, int(budget[2]) if len(budget) > 2 else 3 * day


def peers_today(user_ids: Sequence[int], now: dt.datetime | None = None) -> list[int]:
    """Distinct patients each of these accounts has touched today (the peer comparison)."""
    if not user_ids:
        return []
    _, day, _ = _windows(now or timezone.now())
    if settings.REDIS_URL:
        import redis

        try:
            pipe = _redis().pipeline()
            for user_id in user_ids:
                pipe.scard(_day_key(user_id, day))
            return [int(n) for n in pipe.execute()]
        except redis.RedisError:
            pass  # the database's counts (touch() has told the security officer)
    counts = dict(
        PatientSeen.objects.filter(user_id__in=list(user_ids), hour__gte=day)
        .values("user_id")
        .annotate(n=Count("patient_id", distinct=True))
        .values_list("user_id", "n")
    )
    return [int(counts.get(u, 0)) for u in user_ids]
