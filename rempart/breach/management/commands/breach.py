"""`rempart breach analyse SAMPLE`: a posted sample against the group; the report in the
terminal, and as JSON, HTML and PDF files when asked."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rempart.audit.context import Actor
from rempart.breach.analyse import STEPS
from rempart.breach.readers import SampleError
from rempart.breach.services import breach_analyse
from rempart.lib.files import private_output


class Command(BaseCommand):
    help = "Analyse a leaked sample: genuine or not, whose, which data, from where."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("analyse", help="analyse a sample file (CSV, JSON, XLSX, text)")
        run.add_argument("sample", type=Path)
        run.add_argument("--json", type=Path, help="write the report as JSON")
        run.add_argument("--html", type=Path, help="write the report as HTML")
        run.add_argument("--pdf", type=Path, help="write the report as PDF")
        send = sub.add_parser("send", help="send the queued e-mails to the people concerned")
        send.add_argument("--breach", type=uuid.UUID, help="one breach file only")
        send.add_argument("--rate", type=int, default=300, help="messages per minute at most")
        send.add_argument("--limit", type=int, help="stop after this many")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "send":
            from rempart.breach.outbox import outbox_send

            done = outbox_send(breach_id=options["breach"], per_minute=options["rate"],
                               limit=options["limit"])  # fmt: skip
            self.stdout.write(f"Envoyés : {done.sent} ; refusés : {done.bounced} ; à réessayer : "
                              f"{done.retry} ; abandonnés : {done.failed}.")  # fmt: skip
            return
        path: Path = options["sample"]
        if not path.is_file():
            raise CommandError(f"fichier introuvable : {path}")
        console = Console(stderr=True)
        started = time.perf_counter()
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())  # fmt: skip
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("Analyse : lecture de l'échantillon", total=STEPS)

            def tell(step: str, count: int) -> None:
                took = time.perf_counter() - started
                number = f"{count:,}".replace(",", " ")
                bar.console.print(f"  {step} : {number}  ({took:.1f} s)")
                bar.update(task, advance=1, description=f"Analyse : {step}")

            try:
                analysis = breach_analyse(actor=Actor.system("breach analyse"),
                                          data=path.read_bytes(), file_name=path.name,
                                          progress=tell)  # fmt: skip
            except SampleError as exc:
                raise CommandError(
                    f"échantillon illisible, rien n'a été enregistré : {exc}"
                ) from None
            bar.update(task, completed=STEPS, description="Analyse enregistrée")
        from rempart.breach.report import report_html, report_pdf, summary_lines

        for line in summary_lines(analysis.report):
            self.stdout.write(line)
        outputs = (("json", lambda r: orjson.dumps(r, option=orjson.OPT_INDENT_2)),
                   ("html", lambda r: report_html(r).encode()), ("pdf", report_pdf))  # fmt: skip
        for name, render in outputs:
            target = options.get(name)
            if target:
                with private_output(target, binary=True) as handle:
                    handle.write(render(analysis.report))
                self.stdout.write(f"Rapport {name.upper()} : {target}")
        self.stdout.write(f"Analyse {analysis.pk} enregistrée ({analysis.report['seconds']} s).")
