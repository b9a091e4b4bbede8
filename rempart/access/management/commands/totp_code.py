"""`rempart totp_code USERNAME`: the current second-factor code of a demo account (demo and test
postures only: in production the code lives on the user's phone, nowhere else)."""

from __future__ import annotations

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
        self.stdout.write(f"{device.totp().token():06d}")
