"""`rempart totp_code USERNAME`: the current second-factor code of a demo account (demo and test
postures only: in production the code lives on the user's phone, nowhere else)."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rempart.access.models import SealedTOTPDevice


class Command(BaseCommand):
    help = "Print the current TOTP code of a demo account (refused in production)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.REMPART_ENV == "production":
            raise CommandError("refusé en production : le code est sur le téléphone de l'agent")
        device = SealedTOTPDevice.objects.filter(
            user__username=options["username"], confirmed=True
        ).first()
        if device is None:
            raise CommandError("aucun second facteur actif pour ce compte")
        # The first time step not used yet: a code printed twice in the same 30 s would be refused
        # as a replay, so the second one is the next step's (within the accepted tolerance).
        step = max(int(time.time()) // device.step, device.last_t + 1)
        self.stdout.write(f"{device.totp(step * device.step).token():06d}")
