"""`rempart demo`: set up everything on a fresh machine and serve the demo on 127.0.0.1:8000."""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rempart.audit.services import seal_all, seal_pending
from rempart.directory.models import Establishment
from rempart.synth.accounts import create_demo_accounts, read_demo_accounts
from rempart.synth.services import group_generate
from rempart.vault import keystore
from rempart.vault.crypto import VaultError


def _sealer() -> None:
    from django.db import DatabaseError, connection

    while True:
        try:
            if not seal_pending().events:
                time.sleep(settings.REMPART_AUDIT_SEAL_INTERVAL)
        except DatabaseError:  # SQLite busy: try again at the next tick
            connection.close()
            time.sleep(settings.REMPART_AUDIT_SEAL_INTERVAL)


class Command(BaseCommand):
    help = "Create keys, database and a synthetic group if missing, print the accounts, serve."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patients", type=int, default=3000)
        parser.add_argument("--seed", type=int, default=2024)
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--no-serve", action="store_true", help="set up, print, and stop")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.REMPART_ENV == "production":
            raise CommandError("the demo does not run with REMPART_ENV=production")
        try:
            for path in keystore.init_keys(create_master=True):
                self.stdout.write(f"clé créée : {path}")
        except VaultError as exc:
            raise CommandError(str(exc)) from None
        call_command("migrate", verbosity=0, interactive=False)
        if not Establishment.objects.exists():
            self.stdout.write(
                f"Génération d'un groupe synthétique de {options['patients']} patients…"
            )
            group_generate(patients=options["patients"], seed=options["seed"], establishments=5)
            create_demo_accounts()
            self._load_directory()
            call_command("canaries", "plant", "--per-establishment", "3", verbosity=0)
        seal_all()
        self._print_accounts(options["addrport"])
        if not options["no_serve"]:
            # In production the sealer is its own process (`rempart audit sealer`); the demo
            # runs it beside the server.
            threading.Thread(target=_sealer, name="audit-sealer", daemon=True).start()
            call_command(
                "runserver", options["addrport"], use_reloader=False, insecure_serving=True
            )

    def _load_directory(self) -> None:
        """The town GPs from a synthetic extract of the ANS directory, as a site loads the
        real one with `rempart directory import`: the médecins traitants the group knows are
        in it, with a thousand other professionals of the region."""
        from rempart.directory.annuaire import directory_import
        from rempart.directory.models import Practitioner
        from rempart.synth.annuaire import write_directory_extract

        gps = list(Practitioner.objects.filter(internal=False).values_list("rpps", flat=True))
        path = settings.REMPART_DATA_DIR / "annuaire-demo.txt"
        write_directory_extract(path, people=len(gps) + 1000, seed=2024, include=gps)
        loaded = directory_import(path)
        self.stdout.write(f"Annuaire des professionnels de santé (extrait synthétique, {path}) : "
                          f"{loaded.practitioners} praticiens.")  # fmt: skip

    def _print_accounts(self, addrport: str) -> None:
        self.stdout.write("")
        self.stdout.write(f"Rempart (démo) : http://{addrport}/ — comptes de démonstration :")
        for account in read_demo_accounts():
            self.stdout.write(
                f"  {account.username:28} {account.password:28} {account.role} — {account.scope}"
            )
            if account.totp_secret:
                self.stdout.write(f"  {'':28} second facteur (TOTP) : {account.totp_secret}")
        self.stdout.write(
            "Connexion : identifiant et mot de passe, puis le code à 6 chiffres du second facteur "
            "(données synthétiques). Ajoutez la clé TOTP du compte dans une application "
            "d'authentification, ou affichez le code courant avec "
            "`REMPART_ENV=demo .venv/bin/rempart totp_code IDENTIFIANT`."
        )
        self.stdout.write(f"Données et clés : {settings.REMPART_DATA_DIR} (jamais dans le dépôt)")
        self.stdout.write("")
