"""Gives every request an id and the client's address, which the audit events carry."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from rempart.lib.ids import new_id

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        trusted = settings.REMPART_TRUST_PROXY_HEADERS
        request.request_id = (  # type: ignore[attr-defined]
            incoming if trusted and _REQUEST_ID.match(incoming) else new_id().hex
        )
        address = request.META.get("REMOTE_ADDR", "")
        if trusted:
            forwarded = request.headers.get("X-Forwarded-For", "")
            address = forwarded.split(",")[0].strip() or address
        request.client_ip = address[:45]  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
        return response
