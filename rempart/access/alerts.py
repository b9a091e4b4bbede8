"""Security alerts: stored, mailed to the people of the audience's role, posted to a webhook.
Messages name accounts and ids, never patient data."""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.request
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.utils import timezone

from rempart.access.models import Alert, Severity

log = logging.getLogger(__name__)


def alert_raise(
    *,
    severity: str,
    kind: str,
    message: str,
    audience: str,
    user_id: int | None = None,
    patient_id: uuid.UUID | None = None,
) -> Alert:
    alert = Alert.objects.create(created_at=timezone.now(), severity=severity, kind=kind,
                                 user_id=user_id, patient_id=patient_id, message=message,
                                 audience=audience)  # fmt: skip
    _mail(alert)
    _webhook(alert)
    return alert


def alert_once(*, since: dt.datetime, user_id: int | None, **fields: Any) -> Alert | None:
    """`alert_raise` unless the account already had an alert of this kind since `since` (rates
    and thresholds are told once per window, not at every request past them)."""
    mine = Alert.objects.filter(kind=fields["kind"], created_at__gte=since)
    mine = mine.filter(user__isnull=True) if user_id is None else mine.filter(user_id=user_id)
    if mine.exists():
        return None
    return alert_raise(user_id=user_id, **fields)


def _mail(alert: Alert) -> None:
    recipients = list(
        get_user_model()
        .objects.filter(staff__role=alert.audience, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if not recipients:
        return
    subject = f"[Rempart] {Severity(alert.severity).label} : {alert.get_kind_display()}"
    try:
        send_mail(subject, alert.message, settings.DEFAULT_FROM_EMAIL, recipients)
    except OSError as exc:  # the alert is stored: the officers' pages show it anyway
        log.warning("alert %s not mailed: %s", alert.id, type(exc).__name__)


def _webhook(alert: Alert) -> None:
    url = settings.REMPART_ALERT_WEBHOOK
    if not url:
        return
    body = json.dumps({"id": alert.id, "severity": alert.severity, "kind": alert.kind,
                       "message": alert.message, "audience": alert.audience,
                       "at": alert.created_at.isoformat()}).encode()  # fmt: skip
    request = urllib.request.Request(url, data=body, method="POST",  # noqa: S310  # https in prod
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=3):  # noqa: S310
            pass
    except OSError as exc:
        log.warning("alert %s not posted: %s", alert.id, type(exc).__name__)
