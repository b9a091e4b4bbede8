"""The e-mails to the people concerned: queued from the e-mail draft (each patient's own
categories and advice), then sent through Django's mail backend at a pace the mail server can
bear, resumable (only queued messages are taken, each marked as it goes), bounces recorded.

The addresses are opened for this purpose only, and sealed again in the outbox; the audit trail
records how many and the SHA-256 of the list of ids, never an address."""

from __future__ import annotations

import hashlib
import smtplib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone

from rempart.audit.context import Actor
from rempart.audit.models import Action
from rempart.audit.services import event_record
from rempart.breach import drafts
from rempart.breach.letters import _people
from rempart.breach.models import (
    BreachDraft,
    DraftKind,
    OutboxMessage,
    OutboxStatus,
    StepKind,
)  # fmt: skip
from rempart.breach.notify import BreachRefused, _file, _step, leaked_categories

MAX_ATTEMPTS = 3


def outbox_fill(*, actor: Actor, breach_id: uuid.UUID) -> int:
    """Queue one message per leaked patient with an e-mail address (once per patient)."""
    with transaction.atomic():
        breach = _file(actor, breach_id)
        template = BreachDraft.objects.filter(breach=breach, kind=DraftKind.EMAIL).first()
        if template is None:
            raise BreachRefused("générez d'abord le brouillon du courriel")
        analyses = list(breach.analyses.values_list("pk", flat=True))
    shown = leaked_categories(analyses)
    queued = set(OutboxMessage.objects.filter(breach_id=breach_id)
                 .values_list("patient_id", flat=True))  # fmt: skip
    subject, _, text = template.text.partition("\n")
    subject = subject.removeprefix("Objet :").strip() or "Vos données personnelles"
    messages, ids = [], []
    for raw, _identity, contact in _people(sorted(shown)):
        patient_id = uuid.UUID(bytes=raw)
        if not contact.get("email") or patient_id in queued:
            continue
        message = OutboxMessage(breach_id=breach_id, patient_id=patient_id, subject=subject[:200])
        message.address = contact["email"]
        message.body = drafts.merge(text.lstrip("\n"), "", sorted(shown[raw]))
        messages.append(message)
        ids.append(raw)
    with transaction.atomic():
        breach = _file(actor, breach_id)
        OutboxMessage.objects.bulk_create(messages, batch_size=2000)
        listed = hashlib.sha256(b"".join(ids)).hexdigest()
        event_record(actor, Action.EXPORT, resource_type="BreachOutbox", resource_id=breach.pk,
                     detail={"purpose": "notification", "queued": len(messages),
                             "patients_sha256": listed})  # fmt: skip
        _step(actor, breach, StepKind.PATIENTS, f"courriels mis en file : {len(messages)}")
    return len(messages)


@dataclass
class Sent:
    sent: int = 0
    bounced: int = 0
    failed: int = 0
    retry: int = 0


def outbox_send(*, breach_id: uuid.UUID | None = None, per_minute: int = 300,
                limit: int | None = None,
                sleep: Callable[[float], None] = time.sleep) -> Sent:  # fmt: skip
    """Send the queued messages, `per_minute` at most; stop after `limit`. Safe to stop and run
    again: each message is marked sent in its own transaction right after the server took it."""
    done = Sent()
    pace = 60.0 / max(per_minute, 1)
    queued = OutboxMessage.objects.filter(status=OutboxStatus.QUEUED)
    if breach_id is not None:
        queued = queued.filter(breach_id=breach_id)
    connection = get_connection(fail_silently=False)
    started = time.monotonic()
    count = 0
    waiting = list(queued.order_by("created_at", "id").values_list("pk", flat=True)[:limit])
    for message_id in waiting:
        with transaction.atomic():
            message = OutboxMessage.objects.select_for_update(skip_locked=True).filter(
                pk=message_id, status=OutboxStatus.QUEUED).first()  # fmt: skip
            if message is None:
                continue  # another sender took it
            email = EmailMessage(message.subject, message.body, settings.DEFAULT_FROM_EMAIL,
                                 [message.address], connection=connection)  # fmt: skip
            try:
                email.send()
            except smtplib.SMTPRecipientsRefused as exc:
                code = next(iter(exc.recipients.values()), (0, b""))[0]
                message.status, message.last_error = OutboxStatus.BOUNCED, f"SMTP {code}"
                done.bounced += 1
            except (smtplib.SMTPException, OSError) as exc:
                message.attempts += 1
                message.last_error = type(exc).__name__[:100]
                if message.attempts >= MAX_ATTEMPTS:
                    message.status = OutboxStatus.FAILED
                    done.failed += 1
                else:
                    done.retry += 1
            else:
                message.status, message.sent_at = OutboxStatus.SENT, timezone.now()
                message.attempts += 1
                done.sent += 1
            message.save(update_fields=["status", "last_error", "attempts", "sent_at"])
        count += 1
        wait = started + count * pace - time.monotonic()
        if wait > 0:
            sleep(wait)
    return done
