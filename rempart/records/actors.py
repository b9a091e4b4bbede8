"""The audit Actor of a user or a request: role and establishment from the staff record, address
and request id from the web layer (rempart.web.middleware)."""

from __future__ import annotations

from typing import Any

from rempart.audit.context import Actor
from rempart.directory.models import StaffMember

UNKNOWN_ROLE = "unknown"


def actor_for_user(
    user: Any,
    *,
    ip: str = "",
    request_id: str = "",
    session_key: str = "",
    client_request_id: str = "",
) -> Actor:
    """The actor for an authenticated user (or an anonymous one, for failed logins)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return Actor(username="anonyme", role=UNKNOWN_ROLE, ip=ip, request_id=request_id,
                     client_request_id=client_request_id)  # fmt: skip
    try:  # the user's own cached relation: the pages read it again (role, menus)
        staff = user.staff
    except StaffMember.DoesNotExist:
        staff = None
    places = (
        tuple(staff.establishments.order_by("finess").values_list("id", flat=True)) if staff else ()
    )
    services = tuple(staff.services.values_list("id", flat=True)) if staff else ()
    return Actor(
        username=user.get_username(),
        role=staff.role if staff else UNKNOWN_ROLE,
        user_id=user.pk,
        establishment_id=places[0] if places else None,
        ip=ip,
        request_id=request_id,
        establishments=places,
        services=services,
        practitioner_id=staff.practitioner_id if staff else None,
        session_key=session_key,
        client_request_id=client_request_id,
    )


def actor_for_request(request: Any) -> Actor:
    session = getattr(request, "session", None)
    return actor_for_user(
        getattr(request, "user", None),
        ip=getattr(request, "client_ip", ""),
        request_id=getattr(request, "request_id", ""),
        client_request_id=getattr(request, "client_request_id", ""),
        session_key=(session.session_key or "") if session is not None else "",
    )
