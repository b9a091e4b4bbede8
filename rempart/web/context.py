"""Template context shared by every page."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def session(request: HttpRequest) -> dict[str, Any]:
    return {"idle_seconds": settings.SESSION_COOKIE_AGE}


def breach_clocks(request: HttpRequest) -> dict[str, Any]:
    """The 72-hour clock of every open breach file, on every page of those who handle them."""
    staff = getattr(getattr(request, "user", None), "staff", None)
    if staff is None:
        return {}
    from rempart.breach import notify

    if staff.role not in notify.HANDLERS:
        return {}
    clocks = []
    for breach in notify.open_files():
        clock = notify.clock(breach)
        if clock["state"] != "notified":
            clocks.append({"id": breach.pk, "title": (breach.notes or {}).get("title", ""),
                           **clock})  # fmt: skip
    return {"breach_clocks": clocks}
