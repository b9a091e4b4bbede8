"""`rempart export ...`: the controlled exports from the console, under named accounts (the
person at the console types the account they act as; the two-person rule holds between
accounts, and the trail records the operating-system account beside it)."""

from __future__ import annotations

import datetime as dt
import getpass
import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rempart.access.policy import AccessDenied
from rempart.audit.context import Actor
from rempart.directory.models import Establishment
from rempart.exports import services
from rempart.exports.formats import GROUPS
from rempart.exports.models import ExportPurpose, ExportRequest
from rempart.records.actors import actor_for_user


def _as(username: str) -> Actor:
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(f"compte inconnu ou inactif : {username}")
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "inconnu"
    return actor_for_user(user, request_id=f"console:{who}"[:64])


def _export_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise CommandError("identifiant d'export invalide") from None


class Command(BaseCommand):
    help = "Controlled exports: request, decide, produce, list, purge."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        ask = sub.add_parser("request", help="ask for an export (a second person approves)")
        ask.add_argument("--as", dest="user", required=True, help="the account asking")
        ask.add_argument("--establishment", required=True, help="FINESS")
        ask.add_argument("--purpose", required=True, choices=ExportPurpose.values)
        ask.add_argument("--detail", required=True, help="why (no patient data)")
        ask.add_argument("--fields", required=True, help=f"comma-separated: {', '.join(GROUPS)}")
        ask.add_argument("--format", default="csv", choices=("csv", "xlsx", "ndjson"))
        who = ask.add_mutually_exclusive_group(required=True)
        who.add_argument("--recipient", help="the recipient's age public key (age1...)")
        who.add_argument("--passphrase", action="store_true",
                         help="encrypt with a one-time passphrase, printed once")  # fmt: skip
        ask.add_argument("--stays-since", type=dt.date.fromisoformat)
        decide = sub.add_parser("decide", help="approve or refuse a request")
        decide.add_argument("export_id")
        decide.add_argument("--as", dest="user", required=True)
        verdict = decide.add_mutually_exclusive_group(required=True)
        verdict.add_argument("--approve", action="store_true")
        verdict.add_argument("--refuse", action="store_true")
        decide.add_argument("--note", default="")
        produce = sub.add_parser("produce", help="write the approved file (the asker only)")
        produce.add_argument("export_id")
        produce.add_argument("--as", dest="user", required=True)
        sub.add_parser("list", help="the exports, newest first")
        sub.add_parser("purge", help="destroy the files past their date")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, "_" + options["action"])(options)
        except services.ExportRefused as exc:
            raise CommandError(str(exc)) from None
        except AccessDenied:
            raise CommandError("ce compte n'a pas le droit de faire cela") from None
        except ExportRequest.DoesNotExist:
            raise CommandError("export introuvable") from None

    def _request(self, options: dict[str, Any]) -> None:
        place = Establishment.objects.filter(finess=options["establishment"]).first()
        if place is None:
            raise CommandError("établissement inconnu (FINESS)")
        ask = services.ExportAsk(
            purpose=options["purpose"], detail=options["detail"], establishment_id=place.pk,
            fields=tuple(f.strip() for f in options["fields"].split(",") if f.strip()),
            format=options["format"],
            recipient_kind="passphrase" if options["passphrase"] else "age",
            recipient=options["recipient"] or "", stays_since=options["stays_since"],
        )  # fmt: skip
        export = services.export_request(actor=_as(options["user"]), ask=ask)
        self.stdout.write(f"Demande {export.pk} enregistrée : à approuver par le DPO ou le "
                          "responsable sécurité (rempart export decide).")  # fmt: skip

    def _decide(self, options: dict[str, Any]) -> None:
        export_id = _export_id(options["export_id"])
        services.export_decide(actor=_as(options["user"]), export_id=export_id,
                               approve=options["approve"], note=options["note"])  # fmt: skip
        self.stdout.write("Export approuvé." if options["approve"] else "Export refusé.")

    def _produce(self, options: dict[str, Any]) -> None:
        produced = services.export_produce(actor=_as(options["user"]),
                                           export_id=_export_id(options["export_id"]))  # fmt: skip
        self.stdout.write(f"{produced.rows} patients écrits, chiffrés dans {produced.path} ; "
                          f"détruit le {produced.export.expires_at:%d/%m/%Y %H:%M}.")  # fmt: skip
        if produced.passphrase:
            self.stdout.write(f"Phrase de passe (affichée une seule fois) : {produced.passphrase}")

    def _list(self, options: dict[str, Any]) -> None:
        exports = ExportRequest.objects.select_related("requested_by", "decided_by",
                                                       "establishment")  # fmt: skip
        for e in exports.order_by("-requested_at")[:200]:
            decided = e.decided_by.get_username() if e.decided_by else "-"
            self.stdout.write(f"{e.pk}  {e.requested_at:%d/%m/%Y %H:%M}  {e.status:9}  "
                              f"{e.requested_by.get_username()} / {decided}  "
                              f"{e.establishment.name}  {e.rows or ''}")  # fmt: skip

    def _purge(self, options: dict[str, Any]) -> None:
        done = services.exports_purge(actor=Actor.system("export purge"))
        self.stdout.write(f"{done} fichier(s) d'export détruit(s).")
