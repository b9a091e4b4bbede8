"""The slow scraper: an account that stays under the hourly budget, all day and every day, meets
the daily and weekly budgets, and is alerted when it reads far more than the others of its role.
Played through the selectors (the pages' path), with the database counters and with Redis."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from rempart.access import budgets, policy
from rempart.access.models import Alert, AlertKind, PatientSeen
from rempart.directory.models import Establishment, Role
from rempart.lib.ids import new_id
from rempart.records.actors import actor_for_user
from rempart.records.services.directory import staff_create

PASSWORD = "Un-mot-de-passe-long-42"


def _secretary(name: str, place: Establishment):
    user = staff_create(username=name, password=PASSWORD, role=Role.SECRETARY,
                        establishments=[place]).user  # fmt: skip
    return actor_for_user(user)


@pytest.fixture
def place(group) -> Establishment:
    return Establishment.objects.order_by("finess").first()


def _read(actor, count: int) -> None:
    for _ in range(count):
        policy.charge(actor, [new_id()])


@pytest.mark.usefixtures("one_clock_hour")
def test_the_week_budget_stops_a_scraper_that_keeps_under_the_hour_and_the_day(place, settings):
    settings.REMPART_READ_BUDGETS = {**settings.REMPART_READ_BUDGETS, "secretary": (60, 240, 300)}
    actor = _secretary("sec.lente", place)
    # Six earlier days of 45 patients a day: under the hourly and the daily budget each day.
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    PatientSeen.objects.bulk_create([
        PatientSeen(user_id=actor.user_id, patient_id=new_id(), seen_at=midnight,
                    hour=midnight - dt.timedelta(days=d) + dt.timedelta(hours=10))
        for d in range(1, 7) for _ in range(45)
    ])  # fmt: skip
    _read(actor, 30)  # 300 this week: at the budget ...
    with pytest.raises(policy.StepUpRequired):  # ... one more, and the second factor is asked
        _read(actor, 1)
    usage = budgets.touch(actor.user_id, [])
    assert usage.day == 31 and usage.week == 301 and usage.hour < 60
    # ... and past 1.5 x 300 the account locks, whatever the hour and the day say.
    with pytest.raises(policy.AccountLocked):
        for _ in range(120):
            try:
                _read(actor, 1)
            except policy.StepUpRequired:
                continue
    assert policy.is_locked(actor.user_id)


@pytest.mark.parametrize("backend", ["database", "redis"])
@pytest.mark.usefixtures("one_clock_hour")
def test_an_account_reading_far_more_than_its_peers_is_alerted(place, settings, backend):
    settings.REMPART_READ_BUDGETS = {**settings.REMPART_READ_BUDGETS, "secretary": (500, 900, 2000)}
    if backend == "redis":
        settings.REDIS_URL = "redis://127.0.0.1:6379/15"
        budgets._redis.cache_clear()
        budgets._redis().flushdb()
    try:
        peers = [_secretary(f"sec.pair{i}", place) for i in range(5)]
        for k, peer in enumerate(peers):
            _read(peer, 6 + k)  # a desk's day so far: 6 to 10 patients
        scraper = _secretary("sec.avide", place)
        _read(scraper, 39)
        assert not Alert.objects.filter(kind=AlertKind.PEERS).exists()  # under the floor
        _read(scraper, 1)  # 40: more than 4 x the median (8)
        alert = Alert.objects.get(kind=AlertKind.PEERS)
        assert alert.user_id == scraper.user_id and alert.audience == Role.SECURITY_OFFICER
        assert "médiane des 5 autres comptes de la fonction actifs aujourd'hui : 8" in alert.message
        _read(scraper, 40)
        assert Alert.objects.filter(kind=AlertKind.PEERS).count() == 1  # once a day
        # A peer as busy as the others is not alerted.
        _read(peers[0], 30)
        assert not Alert.objects.filter(kind=AlertKind.PEERS, user_id=peers[0].user_id).exists()
    finally:
        if backend == "redis":
            budgets._redis().flushdb()
            budgets._redis.cache_clear()


@pytest.mark.usefixtures("one_clock_hour")
def test_through_http_a_scraper_far_above_its_peers_is_alerted(place, settings):
    """The same through the pages: a stolen desk account walking ids (each one charged, found
    or not) while the other desks work at their pace."""
    import uuid

    from django.test import Client

    from tests.test_redteam import _device, _login

    settings.REMPART_READ_BUDGETS = {**settings.REMPART_READ_BUDGETS, "secretary": (500, 900, 2000)}
    for k in range(3):
        _read(_secretary(f"sec.pair{k}", place), 5)
    user = staff_create(username="sec.volee", password=PASSWORD, role=Role.SECRETARY,
                        establishments=[place]).user  # fmt: skip
    client = Client()
    _login(client, user, _device(user))
    for n in range(1, 41):
        assert client.get(f"/patients/{uuid.uuid4()}/").status_code == 404
        alerted = Alert.objects.filter(kind=AlertKind.PEERS, user=user).exists()
        assert alerted == (n >= 40)
