"""`rempart directory import FILE`: load the national directory of health professionals (ANS
open data extract); `rempart directory extract --out FILE`: write a synthetic one."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rempart.audit.context import Actor
from rempart.audit.models import Action
from rempart.audit.services import event_record
from rempart.directory.annuaire import DirectoryFileError, directory_import
from rempart.lib.progress import progress_bar


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


class Command(BaseCommand):
    help = "Load the ANS directory extract of health professionals, or write a synthetic one."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        load = sub.add_parser("import")
        load.add_argument("file", type=Path)
        extract = sub.add_parser("extract")
        extract.add_argument("--out", type=Path, required=True)
        extract.add_argument("--people", type=int, default=1000)
        extract.add_argument("--seed", type=int, default=1)
        extract.add_argument(
            "--with-unknown-gps", action="store_true",
            help="include the practitioners imports left 'to complete'",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "extract":
            self._extract(options)
            return
        path: Path = options["file"]
        started = time.perf_counter()
        try:
            total = max(0, _count_lines(path) - 1) if path.is_file() else 0
            with progress_bar("lignes de l'annuaire lues", total) as advance:
                loaded = directory_import(path, progress=advance)
        except DirectoryFileError as exc:
            raise CommandError(f"annuaire refusé, rien n'a été chargé : {exc}") from None
        event_record(Actor.system("directory import"), Action.IMPORT, resource_type="Directory",
                     detail={"rows": loaded.rows, "practitioners": loaded.practitioners,
                             "created": loaded.created, "completed": loaded.completed})  # fmt: skip
        self.stdout.write(
            f"{loaded.rows} lignes lues, {loaded.practitioners} praticiens (RPPS) à jour dont "
            f"{loaded.created} nouveaux et {loaded.completed} complétés "
            f"({time.perf_counter() - started:.1f} s)."
        )

    def _extract(self, options: dict[str, Any]) -> None:
        from rempart.directory.models import Practitioner
        from rempart.synth.annuaire import write_directory_extract

        include = (
            list(Practitioner.objects.filter(to_complete=True).values_list("rpps", flat=True))
            if options["with_unknown_gps"]
            else []
        )
        rows = write_directory_extract(options["out"], people=options["people"],
                                       seed=options["seed"], include=include)  # fmt: skip
        self.stdout.write(f"{rows} lignes écrites dans {options['out']}.")
