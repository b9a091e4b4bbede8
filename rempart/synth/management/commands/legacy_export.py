"""`rempart legacy_export`: write a synthetic Mediboard-style CSV export to rehearse the import."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from rempart.directory.models import Practitioner
from rempart.lib.progress import progress_bar
from rempart.synth.legacy import write_legacy_export


class Command(BaseCommand):
    help = "Write a synthetic legacy export: --patients N --seed S --out FILE [--faults K]."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patients", type=int, required=True)
        parser.add_argument("--seed", type=int, default=2024)
        parser.add_argument("--out", type=Path, required=True)
        parser.add_argument("--encoding", default="cp1252", choices=["cp1252", "utf-8"])
        parser.add_argument("--faults", type=int, default=0, help="rows the import must refuse")
        parser.add_argument("--duplicates", type=int, default=0, help="patients registered twice")
        parser.add_argument("--today", type=dt.date.fromisoformat, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        with progress_bar("export synthétique", options["patients"]) as advance:
            summary = write_legacy_export(
                options["out"],
                patients=options["patients"],
                seed=options["seed"],
                today=options["today"] or timezone.localdate(),
                gps=list(
                    Practitioner.objects.filter(internal=False)
                    .order_by("rpps")
                    .values_list("rpps", flat=True)
                ),
                encoding=options["encoding"],
                faults=options["faults"],
                duplicates=options["duplicates"],
                progress=advance,
            )
        self.stdout.write(
            f"{summary.rows} lignes écrites dans {options['out']} "
            f"({len(summary.faulty)} fautives, {summary.duplicated} doublons)."
        )
