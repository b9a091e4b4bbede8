"""Who is acting, for what, from where: what every audited call carries.

Built once per request by the web layer (rempart.records.actors) or per command for the console.
"""

from __future__ import annotations

import getpass
import uuid
from dataclasses import dataclass, replace

from rempart.audit.models import Purpose

SYSTEM_ROLE = "system"


@dataclass(frozen=True)
class Actor:
    username: str
    role: str
    user_id: int | None = None
    establishment_id: uuid.UUID | None = None
    purpose: str = Purpose.CARE
    ip: str = ""
    request_id: str = ""
    # The user's scope, for the access policy (ids only): every establishment and service they
    # work in, and their practitioner record.
    establishments: tuple[uuid.UUID, ...] = ()
    services: tuple[uuid.UUID, ...] = ()
    practitioner_id: uuid.UUID | None = None
    session_key: str = ""
    # The request id a client or proxy sent (X-Request-ID), kept beside the server's own.
    client_request_id: str = ""

    @classmethod
    def system(cls, command: str, purpose: str = Purpose.ADMINISTRATION) -> Actor:
        """A console command or background job, named after the OS account that ran it."""
        try:
            who = getpass.getuser()
        except (KeyError, OSError):
            who = "inconnu"
        return cls(username=f"{who}:{command}"[:150], role=SYSTEM_ROLE, purpose=purpose)

    def for_purpose(self, purpose: str) -> Actor:
        return replace(self, purpose=purpose)
