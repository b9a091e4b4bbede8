"""The audit Actor of a user or a request: role and establishment from the staff record, address
and request id from the web layer (rempart.web.middleware)."""

from __future__ import annotations

from typing import Any

from rempart.audit.context import Actor
from rempart.directory.models import StaffMember

UNKNOWN_ROLE = "unknown"


def actor_for_user(user: Any, *, ip: str = "", request_id: str = "") -> Actor:
    """The actor for an authenticated user (or an anonymous one, for failed logins)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return Actor(username="anonyme", role=UNKNOWN_ROLE, ip=ip, request_id=request_id)
    staff = StaffMember.objects.filter(user=user).first()
    establishment = staff.establishments.order_by("finess").first() if staff else None
    return Actor(
        username=user.get_username(),
        role=staff.role if staff else UNKNOWN_ROLE,
        user_id=user.pk,
        establishment_id=establishment.pk if establishment else None,
        ip=ip,
        request_id=request_id,
    )


def actor_for_request(request: Any) -> Actor:
    return actor_for_user(
        getattr(request, "user", None),
        ip=getattr(request, "client_ip", ""),
        request_id=getattr(request, "request_id", ""),
    )
