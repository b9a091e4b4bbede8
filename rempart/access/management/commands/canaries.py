"""`rempart canaries plant`: fake patients per establishment that nobody should ever open."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from rempart.access.services import canaries_plant
from rempart.audit.context import Actor
from rempart.audit.models import Purpose


class Command(BaseCommand):
    help = "Plant canary patients: sealed like any other, in nobody's care; opening one locks."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        plant = sub.add_parser("plant")
        plant.add_argument("--per-establishment", type=int, default=3)
        plant.add_argument("--seed", type=int, default=4242)

    def handle(self, *args: Any, **options: Any) -> None:
        planted = canaries_plant(actor=Actor.system("canaries plant", Purpose.SECURITY),
                                 per_establishment=options["per_establishment"],
                                 seed=options["seed"])  # fmt: skip
        total = sum(len(p.patient_ids) for p in planted)
        # The ids are not printed: whoever reads this output should not learn which they are.
        self.stdout.write(f"{total} dossiers leurres posés dans {len(planted)} établissements.")
