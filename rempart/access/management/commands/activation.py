"""`rempart activation USERNAME`: a one-time second-factor activation code, from the console (the
first security officer's; afterwards the security page issues them)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rempart.access.services import activation_code_issue
from rempart.audit.context import Actor
from rempart.audit.models import Purpose


class Command(BaseCommand):
    help = "Issue a one-time activation code for an account's second factor (resets it)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError("compte inconnu")
        code = activation_code_issue(actor=Actor.system("activation", Purpose.SECURITY),
                                     user_id=user.pk)  # fmt: skip
        self.stdout.write(f"Code d'activation (à remettre en main propre, usage unique) : {code}")
