"""Writes on the directory: establishments, services, practitioners, staff accounts."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db import transaction

from rempart.directory.models import Establishment, Practitioner, Role, Service, StaffMember


def establishment_create(*, finess: str, name: str, kind: str, city: str = "") -> Establishment:
    establishment = Establishment(finess=finess, name=name, kind=kind, city=city)
    establishment.full_clean()
    establishment.save()
    return establishment


def service_create(*, establishment: Establishment, code: str, name: str) -> Service:
    service = Service(establishment=establishment, code=code, name=name)
    service.full_clean()
    service.save()
    return service


def practitioner_create(
    *,
    rpps: str,
    family_name: str,
    given_name: str,
    specialty: str,
    internal: bool,
    establishments: Iterable[Establishment] = (),
    city: str = "",
) -> Practitioner:
    with transaction.atomic():
        practitioner = Practitioner(
            rpps=rpps,
            family_name=family_name.upper(),
            given_name=given_name,
            specialty=specialty,
            internal=internal,
            city=city,
        )
        practitioner.full_clean()
        practitioner.save()
        practitioner.establishments.set(list(establishments))
    return practitioner


def staff_create(
    *,
    username: str,
    password: str,
    role: Role,
    first_name: str = "",
    last_name: str = "",
    establishments: Iterable[Establishment] = (),
    services: Iterable[Service] = (),
    practitioner: Practitioner | None = None,
) -> StaffMember:
    with transaction.atomic():
        user = get_user_model().objects.create_user(
            username=username, password=password, first_name=first_name, last_name=last_name
        )
        staff = StaffMember.objects.create(user=user, role=role, practitioner=practitioner)
        staff.establishments.set(list(establishments))
        staff.services.set(list(services))
    return staff


_TO_COMPLETE = uuid.UUID("6d2f3f4e-0b1c-4f7a-9a55-5e0c1e7a2b10")  # namespace of to-complete ids


def to_complete_id(rpps: str) -> uuid.UUID:
    """The id of the practitioner made for a well-formed RPPS the directory does not hold: the
    same in every import worker, on every re-run and at the desk, so links made in parallel
    agree; `rempart directory import` completes the row and keeps the id."""
    return uuid.uuid5(_TO_COMPLETE, rpps)


def practitioner_for_rpps(*, rpps: str) -> Practitioner:
    """The directory's practitioner with this (validated) RPPS, or a new one "to complete"."""
    return Practitioner.objects.get_or_create(rpps=rpps, defaults={
        "id": to_complete_id(rpps), "family_name": "", "given_name": "", "specialty": "",
        "to_complete": True})[0]  # fmt: skip
