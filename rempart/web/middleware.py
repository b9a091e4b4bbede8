"""Gives every request an id and the client's address, which the audit events carry; counts
requests with an unknown session cookie per address."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from rempart.lib.ids import new_id

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def client_address(request: Any) -> str:
    """The client's address: the TCP peer, or behind REMPART_TRUSTED_PROXIES reverse proxies the
    address the outermost of them saw, counted from the right of X-Forwarded-For (django-ipware);
    what a client writes at the left of that header is never taken. Also axes's callable."""
    cached = getattr(request, "client_ip", None)
    if cached is not None:
        return str(cached)
    peer = str(request.META.get("REMOTE_ADDR", ""))
    proxies = settings.REMPART_TRUSTED_PROXIES
    if proxies <= 0:
        return peer[:45]
    from ipware import get_client_ip

    try:
        # python-ipware counts the proxies listed in the header: all but the last one, which is
        # the TCP peer; non-strict, the entries a client wrote before them are skipped.
        found, _routable = get_client_ip(request, proxy_order="left-most",
                                         proxy_count=proxies - 1, strict=False,
                                         request_header_order=["HTTP_X_FORWARDED_FOR"])  # fmt: skip
    except ValueError:
        found = None
    return (found or peer)[:45]


class SessionRefreshMiddleware:
    """Slide a signed-in session's expiry at most once a minute, instead of writing the session
    on every request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is not None and session.session_key and not session.is_empty():
            minute = int(time.time()) // 60
            if session.get("_refreshed") != minute:
                session["_refreshed"] = minute
        return response


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # The id in the trail is always the server's; a client's (or proxy's) is kept beside it.
        request.request_id = new_id().hex  # type: ignore[attr-defined]
        incoming = request.headers.get("X-Request-ID", "")
        request.client_request_id = (  # type: ignore[attr-defined]
            incoming if _REQUEST_ID.match(incoming) else ""
        )
        request.client_ip = client_address(request)  # type: ignore[attr-defined]
        refused = self._unknown_session(request)
        if refused is not None:
            return refused
        from rempart.access.policy import lock_checks_per_request

        with lock_checks_per_request():
            response = self.get_response(request)
        response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
        return response

    @staticmethod
    def _unknown_session(request: HttpRequest) -> HttpResponse | None:
        """A session cookie the server does not know (tampered, forged, expired): the request
        goes on as anonymous. Counted per client address and window, not written one by one:
        the first of a window is recorded in the trail; past the limit the security officer is
        told (once) and such requests are refused, so nobody floods the trail or the logs
        without logging in."""
        if not request.COOKIES.get(settings.SESSION_COOKIE_NAME):
            return None
        request.session.get("_auth_user_id")  # loads the session; an unknown key is dropped
        if request.session.session_key is not None:
            return None
        from django.core.cache import cache

        address = request.client_ip  # type: ignore[attr-defined]
        window = settings.REMPART_UNKNOWN_SESSIONS_WINDOW
        key = f"rempart:unknown-session:{address}"
        if cache.add(key, 1, timeout=window):
            count = 1
        else:
            try:
                count = cache.incr(key)
            except ValueError:  # expired between the two calls
                cache.add(key, 1, timeout=window)
                count = 1
        limit = settings.REMPART_UNKNOWN_SESSIONS_LIMIT
        if count == 1:
            _record_unknown_session(request, count, limit)
        elif count == limit + 1:
            _record_unknown_session(request, count, limit)
            from rempart.access.alerts import alert_raise
            from rempart.access.models import AlertKind, Severity
            from rempart.directory.models import Role

            alert_raise(severity=Severity.WARNING, kind=AlertKind.SESSIONS,
                        audience=Role.SECURITY_OFFICER,
                        message=f"Plus de {limit} requêtes avec une session inconnue depuis "
                                f"{address} en {window // 60} min : refusées jusqu'à la fin "
                                "de la fenêtre.")  # fmt: skip
        if count > limit:
            response = HttpResponse("Trop de requêtes.", status=429,
                                    content_type="text/plain; charset=utf-8")  # fmt: skip
            response["Retry-After"] = str(window)
            response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
            return response
        return None


def _record_unknown_session(request: HttpRequest, count: int, limit: int) -> None:
    from rempart.audit.context import Actor
    from rempart.audit.models import Action, Outcome, Purpose
    from rempart.audit.services import event_record

    actor = Actor(username="anonyme", role="unknown", purpose=Purpose.SECURITY,
                  ip=request.client_ip, request_id=request.request_id,  # type: ignore[attr-defined]
                  client_request_id=request.client_request_id)  # type: ignore[attr-defined]  # fmt: skip
    event_record(actor, Action.LOGIN_FAILED, resource_type="Session", outcome=Outcome.DENIED,
                 detail={"reason": "unknown_session", "count": count,
                         "rate_limited": count > limit})  # fmt: skip


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
