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
        self._note_invalid_session(request)
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
        return response

    @staticmethod
    def _note_invalid_session(request: HttpRequest) -> None:
        """A session cookie the server does not know (tampered, forged, or expired) is
        recorded: the request goes on as anonymous."""
        if not request.COOKIES.get(settings.SESSION_COOKIE_NAME):
            return
        request.session.get("_auth_user_id")  # loads the session; an unknown key is dropped
        if request.session.session_key is not None:
            return
        from rempart.audit.context import Actor
        from rempart.audit.models import Action, Outcome, Purpose
        from rempart.audit.services import event_record

        actor = Actor(username="anonyme", role="unknown", purpose=Purpose.SECURITY,
                      ip=request.client_ip, request_id=request.request_id)  # type: ignore[attr-defined]  # fmt: skip
        event_record(actor, Action.LOGIN_FAILED, resource_type="Session", outcome=Outcome.DENIED,
                     detail={"reason": "unknown_session"})  # fmt: skip


# Pages a logged-in user may reach before giving the second factor.
_BEFORE_SECOND_FACTOR = ("/connexion/", "/deconnexion/", "/static/", "/i18n/")


class SecondFactorMiddleware:
    """Every page needs the second factor (TOTP) once the password is given; accounts locked
    by the access policy are logged out at their next request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.contrib.auth import logout
        from django.shortcuts import redirect, render

        from rempart.access.policy import is_locked

        user = request.user
        if user.is_authenticated:
            if is_locked(user.pk):
                logout(request)
                return render(request, "web/locked.html", status=403)
            verified = getattr(user, "is_verified", lambda: False)()
            if not verified and not request.path.startswith(_BEFORE_SECOND_FACTOR):
                return redirect("otp-verify")
        return self.get_response(request)


class AccessErrorsMiddleware:
    """The access policy's refusals as pages: step-up, locked, not found, trail unavailable."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        from urllib.parse import urlencode

        from django.contrib.auth import logout
        from django.shortcuts import redirect, render
        from django.urls import reverse

        from rempart.access.policy import AccessDenied, AccountLocked, StepUpRequired
        from rempart.audit.services import AuditUnavailable
        from rempart.records.selectors.patients import PatientNotFound

        if isinstance(exc, StepUpRequired):
            target = reverse("step-up") + "?" + urlencode({"next": request.get_full_path()})
            return redirect(target)
        if isinstance(exc, AccountLocked):
            logout(request)
            return render(request, "web/locked.html", status=403)
        if isinstance(exc, PatientNotFound):
            return render(request, "web/not_found.html", status=404)
        if isinstance(exc, AccessDenied):
            return render(request, "web/forbidden.html", status=403)
        if isinstance(exc, AuditUnavailable):
            return render(request, "web/unavailable.html", status=503)
        return None
