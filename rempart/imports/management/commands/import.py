"""`rempart import FILE`: load a legacy patient export (CSV), resumable, with a reject file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rempart.imports.services import import_file
from rempart.imports.sources import SourceError
from rempart.lib.progress import progress_bar
from rempart.lib.timings import timing_lines


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


class Command(BaseCommand):
    # The system checks read the code, not the data: `rempart check` and the other commands run
    # them; a bulk run is measured against PostgreSQL's own load, and they cost it 0.4 s.
    requires_system_checks: list[str] = []
    help = (
        "Import a legacy patient export (CSV, UTF-8 or cp1252, delimiter sniffed). Built-in "
        "Mediboard-style columns, or --map FILE (JSON). Re-run after a crash to resume."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--map", type=Path, dest="mapping", help="column mapping (JSON)")
        parser.add_argument("--establishment", help="FINESS of the establishment giving the IPPs")
        parser.add_argument(
            "--rejects", type=Path,
            help="also write the refused lines in clear to this file (0600); they are kept "
                 "sealed in the database for the 'Reprise des données' page either way",
        )  # fmt: skip
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument("--workers", type=int, default=2)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        started = time.perf_counter()
        try:
            total = max(0, _count_lines(path) - 1) if path.is_file() else 0
            with progress_bar("lignes importées", total) as advance:
                summary = import_file(
                    path,
                    mapping_path=options["mapping"],
                    establishment_finess=options["establishment"],
                    reject_path=options["rejects"],
                    batch_size=options["batch_size"],
                    workers=options["workers"],
                    progress=advance,
                )
        except SourceError as exc:
            raise CommandError(f"import refusé, rien n'a été écrit : {exc}") from None
        elapsed = time.perf_counter() - started
        if summary.already_done:
            self.stdout.write("Ce fichier a déjà été importé : rien à faire.")
        elif summary.resumed_from_line:
            self.stdout.write(f"Reprise après la ligne {summary.resumed_from_line}.")
        self.stdout.write(
            f"{summary.imported} patients importés (dont {summary.warned} avec un champ écarté), "
            f"{summary.rejected} lignes refusées, {summary.duplicates} doublons potentiels à "
            f"examiner ({elapsed:.1f} s)."
        )
        if summary.rejected or summary.warned:
            self.stdout.write("Motifs ligne par ligne, correction des lignes refusées : page "
                              "« Reprise des données ».")  # fmt: skip
        if options["verbosity"] >= 2 and summary.timings:
            self.stdout.write("Temps par étape (le processus principal, puis le CPU des workers) :")
            for line in timing_lines(summary.timings):
                self.stdout.write(line)
        if summary.reject_file is not None and summary.rejected:
            self.stdout.write(f"Lignes refusées et motifs : {summary.reject_file}")
