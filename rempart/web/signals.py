"""Logins, failed logins and logouts go to the audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from rempart.audit.models import Action, Outcome, Purpose
from rempart.audit.services import event_record
from rempart.records.actors import actor_for_request, actor_for_user


@receiver(user_logged_in)
def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    actor = actor_for_request(request).for_purpose(Purpose.SECURITY)
    event_record(actor, Action.LOGIN, resource_type="User", resource_id=str(user.pk))


@receiver(user_logged_out)
def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    actor = actor_for_user(user, ip=getattr(request, "client_ip", ""),
                           request_id=getattr(request, "request_id", ""))  # fmt: skip
    event_record(actor.for_purpose(Purpose.SECURITY), Action.LOGOUT, resource_type="User",
                 resource_id=str(user.pk))  # fmt: skip


@receiver(user_login_failed)
def _login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    # The typed name is kept only when it is an account's: a password typed in the wrong box
    # must not land in the trail.
    typed = str(credentials.get("username", ""))[:150]
    known = get_user_model().objects.filter(username=typed).first()
    actor = actor_for_user(None, ip=getattr(request, "client_ip", ""),
                           request_id=getattr(request, "request_id", ""))  # fmt: skip
    event_record(actor.for_purpose(Purpose.SECURITY), Action.LOGIN_FAILED, resource_type="User",
                 resource_id=str(known.pk) if known else "", outcome=Outcome.DENIED,
                 detail={"account": typed if known else "inconnu"})  # fmt: skip
