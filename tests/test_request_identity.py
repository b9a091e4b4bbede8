"""Trail and identity of requests, through HTTP: unknown session cookies are counted per client
address (one event, then refusals and one alert, never one durable event each); the client
address behind proxies is the one the trusted proxy saw, not what the client wrote; request ids
are the server's, the client's kept beside them."""

from __future__ import annotations

import secrets

import pytest
from django.conf import settings
from django.test import Client

from rempart.access.models import Alert, AlertKind
from rempart.audit.models import Event


def _with_forged_session(address: str, **headers: str) -> Client:
    client = Client(REMOTE_ADDR=address, **headers)
    client.cookies[settings.SESSION_COOKIE_NAME] = secrets.token_hex(16)
    return client


def test_a_flood_of_unknown_sessions_writes_one_event_and_is_refused(db, settings):
    settings.REMPART_UNKNOWN_SESSIONS_LIMIT = 20
    statuses = [_with_forged_session("198.51.100.7").get("/connexion/").status_code
                for _ in range(200)]  # fmt: skip
    assert statuses[:20] == [200] * 20 and set(statuses[21:]) == {429}
    events = Event.objects.filter(resource_type="Session", detail__reason="unknown_session")
    assert events.count() == 2  # the first of the window, and the crossing of the limit
    assert [e.detail["count"] for e in events.order_by("id")] == [1, 21]
    alerts = Alert.objects.filter(kind=AlertKind.SESSIONS)
    assert alerts.count() == 1 and "198.51.100.7" in alerts.get().message
    # Another address is not held up by the flood; a page without a forged cookie neither.
    assert _with_forged_session("198.51.100.8").get("/connexion/").status_code == 200
    assert Client(REMOTE_ADDR="198.51.100.7").get("/connexion/").status_code == 200


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "6.6.6.6", "10.0.0.2"),  # no proxy: the header is the client's word, ignored
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # what the client wrote on the left: skipped
        (2, "6.6.6.6, 203.0.113.9, 10.0.0.5", "203.0.113.9"),
        (1, "pas-une-adresse", "10.0.0.2"),
    ],
)
def test_the_client_address_is_the_one_the_trusted_proxy_saw(
    db, settings, proxies, forwarded, expected
):
    settings.REMPART_TRUSTED_PROXIES = proxies
    client = _with_forged_session("10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    client.get("/connexion/")
    assert Event.objects.filter(resource_type="Session").get().ip == expected


def test_request_ids_are_the_servers_and_the_clients_is_kept_beside(db, settings):
    settings.REMPART_TRUSTED_PROXIES = 1
    client = _with_forged_session("10.0.0.2", HTTP_X_REQUEST_ID="choisi-par-le-client")
    response = client.get("/connexion/")
    assert response["X-Request-ID"] != "choisi-par-le-client"
    assert len(response["X-Request-ID"]) == 32
    event = Event.objects.filter(resource_type="Session").get()
    assert event.request_id == response["X-Request-ID"]
    assert event.detail["client_request_id"] == "choisi-par-le-client"
    malformed = _with_forged_session("10.0.0.3", HTTP_X_REQUEST_ID="x" * 200 + "\n")
    malformed.get("/connexion/")
    assert "client_request_id" not in Event.objects.filter(ip="10.0.0.3").get().detail
