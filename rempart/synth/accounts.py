"""Demo staff accounts: one per role and establishment, with generated passwords.

The passwords are written once to REMPART_DATA_DIR/demo-accounts.txt (mode 0600) so each
`rempart demo` can print them again; the database holds only their Argon2 hashes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count

from rempart.care.models import Stay
from rempart.directory.models import Establishment, Practitioner, Role, Service, StaffMember
from rempart.records.services.directory import staff_create
from rempart.synth.generator import _slug


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    role: str
    scope: str
    totp_secret: str = ""  # base32, for an authenticator app (or `rempart totp_code USER`)


def accounts_file() -> Path:
    return Path(settings.REMPART_DATA_DIR) / "demo-accounts.txt"


def _password() -> str:
    words = secrets.token_urlsafe(12)
    return f"rempart-{words}"


def create_demo_accounts() -> list[DemoAccount]:
    accounts: list[DemoAccount] = []

    def add(
        username: str,
        role: Role,
        scope: str,
        establishments: list[Establishment],
        services: list[Service],
        practitioner: Practitioner | None = None,
    ) -> None:
        password = _password()
        staff_create(
            username=username,
            password=password,
            role=role,
            establishments=establishments,
            services=services,
            practitioner=practitioner,
        )
        accounts.append(DemoAccount(username, password, str(role.label), scope))

    everything = list(Establishment.objects.all())
    for est in everything:
        slug = _slug(est.name)
        services = list(est.services.all())
        add(f"secretaire.{slug}", Role.SECRETARY, est.name, [est], services)
        # The clinicians' accounts are in the wards with the most patients in them now: someone
        # trying the demo sees a ward list with patients on it.
        present = dict(
            Stay.objects.filter(establishment=est, admitted_at__isnull=False, discharged_at=None,
                                cancelled_at=None)
            .values("service_id").annotate(n=Count("pk")).values_list("service_id", "n")
        )  # fmt: skip
        first_service = max(services, key=lambda s: present.get(s.pk, 0))
        doctor = max(
            StaffMember.objects.filter(role=Role.PHYSICIAN, establishments=est)
            .select_related("user")
            .prefetch_related("services")
            .order_by("user__username"),
            key=lambda d: sum(present.get(s.pk, 0) for s in d.services.all()),
            default=None,
        )
        if doctor is None:
            add(f"medecin.{slug}", Role.PHYSICIAN, f"{est.name}, {first_service.name}", [est],
                [first_service])  # fmt: skip
        else:
            # The generated staff already holds a physician account: the demo opens it.
            password = _password()
            doctor.user.username = f"medecin.{slug}"
            doctor.user.set_password(password)
            doctor.user.save()
            unit = ", ".join(s.name for s in doctor.services.all()) or first_service.name
            accounts.append(DemoAccount(doctor.user.username, password, str(Role.PHYSICIAN.label),
                                        f"{est.name}, {unit}"))  # fmt: skip
        add(
            f"infirmier.{slug}",
            Role.NURSE,
            f"{est.name}, {first_service.name}",
            [est],
            [first_service],
        )
    # The pharmacy of the first clinic serves its wards (a clinician attached to no service
    # sees nothing).
    pharmacy = everything[0]
    add("pharmacien", Role.PHARMACIST, f"{pharmacy.name}, tous ses services", [pharmacy],
        list(pharmacy.services.all()))  # fmt: skip
    add("dpo", Role.DPO, "tout le groupe", everything, [])
    add("rssi", Role.SECURITY_OFFICER, "tout le groupe", everything, [])
    add("auditeur", Role.AUDITOR, "tout le groupe", everything, [])
    add("admin.technique", Role.TECH_ADMIN, "exploitation, sans accès aux patients", [], [])
    accounts = [replace(a, totp_secret=_second_factor(a.username)) for a in accounts]
    path = accounts_file()
    path.touch(mode=0o600)
    path.write_text(
        "".join(
            f"{a.username}\t{a.password}\t{a.role}\t{a.scope}\t{a.totp_secret}\n" for a in accounts
        ),
        encoding="utf-8",
    )
    return accounts


def _second_factor(username: str) -> str:
    """A confirmed TOTP device for a demo account; its secret in base32 for the printout."""
    from base64 import b32encode

    from rempart.access.models import SealedTOTPDevice

    user = get_user_model().objects.get(username=username)
    device = SealedTOTPDevice(user=user, name="TOTP", confirmed=True,
                              secret=secrets.token_hex(20))  # fmt: skip
    device.save(force_insert=True)
    return b32encode(device.bin_key).decode()


def read_demo_accounts() -> list[DemoAccount]:
    path = accounts_file()
    if not path.exists():
        return []
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [DemoAccount(*row) for row in rows if len(row) in (4, 5)]
