"""The audit Actor of a user or a request: role and establishment from the staff record, address
and request id from the web layer (rempart.web.middleware)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection

from rempart.audit.context import Actor
from rempart.directory.models import Establishment, StaffMember

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
    places, services = _scope(staff.pk) if staff else ((), ())
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


def _scope(staff_id: int) -> tuple[tuple[uuid.UUID, ...], tuple[uuid.UUID, ...]]:
    """The staff member's establishments (in FINESS order) and services, in one query."""
    places = StaffMember.establishments.through._meta.db_table
    services = StaffMember.services.through._meta.db_table
    establishment = Establishment._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 0, e.id, e.finess FROM {places} t JOIN {establishment} e "  # noqa: S608  # model tables
            f"ON e.id = t.establishment_id WHERE t.staffmember_id = %s "
            f"UNION ALL SELECT 1, t.service_id, '' FROM {services} t WHERE t.staffmember_id = %s",
            [staff_id, staff_id],
        )
        rows = cursor.fetchall()

    def as_id(value: Any) -> uuid.UUID:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))

    found = sorted((finess, as_id(pk)) for kind, pk, finess in rows if kind == 0)
    return (tuple(pk for _, pk in found),
            tuple(as_id(pk) for kind, pk, _ in rows if kind == 1))  # fmt: skip


def actor_for_request(request: Any) -> Actor:
    session = getattr(request, "session", None)
    return actor_for_user(
        getattr(request, "user", None),
        ip=getattr(request, "client_ip", ""),
        request_id=getattr(request, "request_id", ""),
        client_request_id=getattr(request, "client_request_id", ""),
        session_key=(session.session_key or "") if session is not None else "",
    )
