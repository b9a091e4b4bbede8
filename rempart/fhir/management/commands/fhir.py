"""`rempart fhir client add|list|disable`: the systems allowed on the FHIR API, registered with
the public keys they sign their assertions with (a JWK Set file) and their scopes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rempart.audit.context import Actor
from rempart.directory.models import Establishment
from rempart.fhir.models import ApiClient
from rempart.fhir.services import TokenRefused, api_client_disable, api_client_register


class Command(BaseCommand):
    help = "Register, list or disable the systems allowed on the FHIR API."

    def add_arguments(self, parser: CommandParser) -> None:
        clients = parser.add_subparsers(dest="what", required=True)
        sub = clients.add_parser("client", help="the systems allowed on the API").add_subparsers(
            dest="action", required=True)  # fmt: skip
        add = sub.add_parser("add", help="register a system with its public keys")
        add.add_argument("--id", required=True, help="client_id (letters, digits, - and _)")
        add.add_argument("--name", required=True)
        add.add_argument("--jwks", type=Path, help="a system's public JWK Set (JSON)")
        add.add_argument("--establishment", action="append", default=[], metavar="FINESS",
                         help="an establishment a system serves (repeat)")  # fmt: skip
        add.add_argument(
            "--redirect-uri",
            action="append",
            default=[],
            help="an application's redirect URI (repeat): a user-facing app",
        )
        add.add_argument(
            "--age-recipient",
            default="",
            help="a system's age public key, for its Bulk $export files",
        )
        add.add_argument(
            "--export-purpose",
            default="",
            help="the purpose of its Bulk $export (e.g. care_transfer)",
        )
        add.add_argument("--scope", action="append", required=True,
                         help="e.g. system/Patient.rs, user/Patient.rs (repeat)")  # fmt: skip
        sub.add_parser("list", help="the registered systems")
        off = sub.add_parser("disable", help="stop a system (its tokens stop working)")
        off.add_argument("--id", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.system("fhir client")
        try:
            if options["action"] == "add":
                places = list(Establishment.objects.filter(finess__in=options["establishment"]))
                if len(places) != len(set(options["establishment"])):
                    raise CommandError("Établissement inconnu (FINESS).")
                client = api_client_register(
                    actor=actor, client_id=options["id"], name=options["name"],
                    jwks=options["jwks"].read_text(encoding="utf-8") if options["jwks"] else "",
                    scopes=options["scope"], establishments=places,
                    redirect_uris=options["redirect_uri"] or None,
                    export_recipient=options["age_recipient"],
                    export_purpose=options["export_purpose"],
                )  # fmt: skip
                self.stdout.write(f"Client {client.client_id} enregistré : "
                                  f"{' '.join(client.scopes)}.")  # fmt: skip
            elif options["action"] == "disable":
                api_client_disable(actor=actor, client_id=options["id"])
                self.stdout.write(f"Client {options['id']} désactivé.")
            else:
                for client in ApiClient.objects.order_by("client_id"):
                    state = "actif" if client.active else "désactivé"
                    self.stdout.write(f"{client.client_id}\t{client.name}\t{state}\t"
                                      f"{' '.join(client.scopes)}")  # fmt: skip
        except (TokenRefused, OSError) as exc:
            raise CommandError(str(exc)) from None
