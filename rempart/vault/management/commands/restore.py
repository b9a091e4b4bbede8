"""`rempart restore FILE --identity-file KEY`: onto an empty machine (empty database, no
keyset), with the master key configured (HSM or its file); then `rempart audit verify`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rempart.audit.context import Actor
from rempart.audit.services import AuditUnavailable
from rempart.vault.backup import BackupError, backup_restore


class Command(BaseCommand):
    help = "Restore an encrypted backup onto an empty machine."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", type=Path)
        parser.add_argument(
            "--identity-file",
            type=Path,
            required=True,
            help="the custodian's age identity (AGE-SECRET-KEY-1...)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            identity = options["identity_file"].read_text(encoding="utf-8")
            manifest = backup_restore(actor=Actor.system("restore"), source=options["source"],
                                      identity=identity)  # fmt: skip
        except (BackupError, AuditUnavailable, OSError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Restauré : la sauvegarde du {manifest['created_at']}. Vérifiez le "
                          "journal : rempart audit verify.")  # fmt: skip
