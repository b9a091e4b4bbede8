"""`rempart backup --out FILE --recipient age1...`: the database, the wrapped keysets and the
audit checkpoint file, in one file encrypted to the backup custodians' age keys. The master key
is not in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rempart.audit.context import Actor
from rempart.audit.services import AuditUnavailable
from rempart.vault.backup import BackupError, backup_create


class Command(BaseCommand):
    help = "Write an encrypted backup (database, wrapped keysets, audit checkpoints)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", type=Path, required=True)
        parser.add_argument(
            "--recipient",
            action="append",
            required=True,
            help="an age public key (age1...) that may restore it (repeat)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            manifest = backup_create(actor=Actor.system("backup"), out=options["out"],
                                     recipients=options["recipient"])  # fmt: skip
        except (BackupError, AuditUnavailable, OSError) as exc:
            raise CommandError(str(exc)) from None
        size = sum(p["bytes"] for p in manifest["parts"].values())
        self.stdout.write(f"Sauvegarde écrite : {options['out']} ({len(manifest['parts'])} "
                          f"parties, {size:,} octets avant chiffrement).")  # fmt: skip
