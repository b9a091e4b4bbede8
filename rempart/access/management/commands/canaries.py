"""`rempart canaries plant`: fake patients per establishment that nobody should ever open."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rempart.access.canaries import CanaryRefused, canaries_plant
from rempart.audit.context import Actor
from rempart.audit.models import Purpose


class Command(BaseCommand):
    help = (
        "Plant canary patients modelled on real ones (rempart.access.canaries); opening one, or "
        "planning a stay for one, locks the account."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        plant = sub.add_parser("plant")
        plant.add_argument("--per-establishment", type=int, default=3)
        plant.add_argument("--no-reorder", action="store_true",
                           help="skip rewriting the tables in id order (CLUSTER): faster, but "
                                "the new rows stay at the end of the heap")  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            planted = canaries_plant(actor=Actor.system("canaries plant", Purpose.SECURITY),
                                     per_establishment=options["per_establishment"],
                                     reorder=not options["no_reorder"])  # fmt: skip
        except CanaryRefused as exc:
            raise CommandError(str(exc)) from None
        total = sum(len(p.patient_ids) for p in planted)
        short = sum(1 for p in planted if len(p.patient_ids) < options["per_establishment"])
        # The ids are not printed: whoever reads this output should not learn which they are.
        self.stdout.write(f"{total} dossiers leurres posés dans {len(planted)} établissements.")
        if short:
            self.stdout.write(
                f"{short} établissement(s) sans assez de numéros IPP libres ou de patients "
                "modèles (séjours tous passés) : relancez plus tard, après de nouvelles "
                "admissions."
            )
