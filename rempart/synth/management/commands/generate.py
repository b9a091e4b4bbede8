"""`rempart generate`: load a deterministic synthetic clinic group into an empty database."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rempart.lib.timings import timing_lines
from rempart.synth.services import group_generate


class Command(BaseCommand):
    # The system checks read the code, not the data: `rempart check` and the other commands run
    # them; a bulk run is measured against PostgreSQL's own load, and they cost it 0.4 s.
    requires_system_checks: list[str] = []
    help = "Generate a synthetic group: --patients N --seed S [--establishments E] [--today DATE]."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patients", type=int, required=True)
        parser.add_argument("--seed", type=int, default=2024)
        parser.add_argument("--establishments", type=int, default=5)
        parser.add_argument(
            "--workers", type=int, default=2, help="processes that generate and encrypt (0: none)"
        )
        parser.add_argument(
            "--today",
            type=dt.date.fromisoformat,
            default=None,
            help="reference date (YYYY-MM-DD); the same seed and date give the same group",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        try:
            summary = group_generate(
                patients=options["patients"],
                seed=options["seed"],
                establishments=options["establishments"],
                today=options["today"],
                workers=options["workers"],
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        elapsed = time.perf_counter() - started
        rate = f"{summary.patients / elapsed:,.0f}".replace(",", " ")
        self.stdout.write(
            f"{summary.patients} patients, {summary.stays} séjours, {summary.prescriptions} "
            f"ordonnances ({summary.lines} lignes), {summary.staff} comptes du personnel "
            f"en {elapsed:.1f} s ({rate} patients/s)"
        )
        if options["verbosity"] >= 2:
            self.stdout.write("Temps par étape (le processus qui écrit, puis le CPU des workers) :")
            for line in timing_lines(summary.timings):
                self.stdout.write(line)
