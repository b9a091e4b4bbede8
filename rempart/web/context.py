"""Template context shared by every page."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def session(request: HttpRequest) -> dict[str, Any]:
    return {"idle_seconds": settings.SESSION_COOKIE_AGE}
