"""`rempart keys`: create, list and rotate the keysets, re-encrypt and re-index.

It lives with access (not vault) because re-indexing re-keys the canary marks too, and every
key operation goes to the audit trail: this floor may see both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rempart.access.services import canary_decoys_rekey, canary_marks_rekey
from rempart.audit.context import Actor
from rempart.audit.models import Action, Purpose
from rempart.audit.services import AuditUnavailable, event_record
from rempart.lib.progress import progress_bar
from rempart.vault import crypto, keystore, rotation


class Command(BaseCommand):
    help = (
        "Manage the vault's keys: init, list, add CATEGORY, promote CATEGORY KEY_ID, "
        "reencrypt, reindex, disable CATEGORY KEY_ID."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        init = sub.add_parser("init", help="create the missing master key (demo) and keysets")
        init.add_argument(
            "--create-master",
            action="store_true",
            help="create REMPART_DATA_DIR/master.key when no master key is configured",
        )
        sub.add_parser("list", help="keys of each category, and how many values each one sealed")
        rewrap = sub.add_parser(
            "rewrap", help="wrap every keyset with the configured master key, from an old one"
        )
        old = rewrap.add_mutually_exclusive_group(required=True)
        old.add_argument(
            "--old-master-file",
            type=Path,
            help="the former master key file (moving the keys into an HSM)",
        )
        old.add_argument(
            "--old-hsm-key",
            metavar="LABEL",
            help="the former key's label in the same token (an HSM key rotation)",
        )
        hsm = sub.add_parser("hsm-key", help="generate a new master key in the PKCS#11 token")
        hsm.add_argument("--label", required=True)
        add = sub.add_parser("add", help="add a new key (enabled, not primary)")
        add.add_argument("category", choices=crypto.ALL_CATEGORIES)
        promote = sub.add_parser("promote", help="make a key the primary (new values use it)")
        promote.add_argument("category", choices=crypto.ALL_CATEGORIES)
        promote.add_argument("key_id", type=int)
        re = sub.add_parser(
            "reencrypt", help="re-seal every value under its category's primary key"
        )
        re.add_argument("--category", choices=crypto.AEAD_CATEGORIES, action="append")
        re.add_argument("--batch-size", type=int, default=2000)
        reindex = sub.add_parser(
            "reindex",
            help="recompute every blind index (and canary tag) not made under the primary "
            "index key, from the sealed values; resumable",
        )
        reindex.add_argument("--batch-size", type=int, default=2000)
        disable = sub.add_parser("disable", help="disable an old key once nothing uses it")
        disable.add_argument("category", choices=crypto.ALL_CATEGORIES)
        disable.add_argument("key_id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "init":
                create = options["create_master"] or settings.REMPART_ENV != "production"
                made = keystore.init_keys(create_master=create)
                for path in made:
                    self.stdout.write(f"créé : {path}")
                if made:
                    _audit("init", {"created": [Path(p).name for p in made]}, optional=True)
                if not made:
                    self.stdout.write("Les clés existent déjà et s'ouvrent avec la clé maîtresse.")
            elif action == "list":
                self._list()
            elif action == "rewrap":
                if options["old_hsm_key"]:
                    old = keystore.hsm_master(options["old_hsm_key"])
                    if old is None:
                        raise crypto.MasterKeyError("no PKCS#11 token configured")
                else:
                    old = crypto.open_master_key(
                        options["old_master_file"].read_text(encoding="utf-8")
                    )
                done = keystore.rewrap_keysets(old)
                _audit("rewrap", {"keysets": done,
                                  "hsm": bool(settings.REMPART_PKCS11_MODULE)})  # fmt: skip
                self.stdout.write(f"{len(done)} jeux de clés rechiffrés avec la clé maîtresse "
                                  "configurée.")  # fmt: skip
            elif action == "hsm-key":
                token = keystore.hsm_master(options["label"])
                if token is None:
                    raise crypto.MasterKeyError("no PKCS#11 token configured")
                token.generate()
                _audit("hsm-key", {"label": options["label"]})
                self.stdout.write(f"clé {options['label']} créée dans le jeton (non extractible)")
            elif action == "add":
                key_id = rotation.key_add(options["category"])
                _audit("add", {"category": options["category"], "key_id": key_id})
                self.stdout.write(f"{options['category']}: clé {key_id} ajoutée (non primaire)")
            elif action == "promote":
                rotation.key_promote(options["category"], options["key_id"])
                _audit("promote", {"category": options["category"], "key_id": options["key_id"]})
                self.stdout.write(f"{options['category']}: clé {options['key_id']} primaire")
            elif action == "reencrypt":
                for category in options["category"] or crypto.AEAD_CATEGORIES:
                    total = rotation.rows_to_scan(category)
                    with progress_bar(f"rechiffrement {category}", total) as advance:
                        n = rotation.reencrypt(
                            category, batch_size=options["batch_size"], progress=advance
                        )
                    _audit("reencrypt", {"category": category, "values": n})
                    self.stdout.write(f"{category}: {n} valeurs rechiffrées")
            elif action == "reindex":
                self._reindex(options["batch_size"])
            elif action == "disable":
                rotation.key_disable(options["category"], options["key_id"])
                _audit("disable", {"category": options["category"], "key_id": options["key_id"]})
                self.stdout.write(f"{options['category']}: clé {options['key_id']} désactivée")
        except crypto.VaultError as exc:
            raise CommandError(str(exc)) from None
        except AuditUnavailable as exc:
            raise CommandError(str(exc)) from None

    def _reindex(self, batch_size: int) -> None:
        total = rotation.count_to_reindex()
        with progress_bar("réindexation", total) as advance:
            n = rotation.reindex(
                batch_size=batch_size, progress=advance, on_batch=canary_marks_rekey
            )
        canary_decoys_rekey()
        key_id = keystore.get_vault().indexer.primary_key_id
        _audit("reindex", {"category": crypto.INDEX_CATEGORY, "key_id": key_id, "rows": n})
        self.stdout.write(f"index : {n} lignes réindexées sous la clé {key_id}")

    def _list(self) -> None:
        for category in crypto.ALL_CATEGORIES:
            handle = keystore.read_keyset(category)
            counts: Any = (
                rotation.ciphertexts_by_key(category)
                if category != crypto.INDEX_CATEGORY
                else rotation.rows_by_index_key(indexed_only=True)
            )
            for key in crypto.describe_keyset(handle):
                mark = "primaire" if key.primary else ""
                used = counts.get(key.key_id, 0)
                self.stdout.write(
                    f"{category:9} {key.key_id:>11} {key.status:9} {mark:8} {used} valeurs"
                )


def _audit(operation: str, detail: dict[str, Any], *, optional: bool = False) -> None:
    """Key operations go to the audit trail. `keys init` may run before the database exists:
    then it is recorded nowhere but its output (optional=True)."""
    from django.db import DatabaseError, connection

    if optional:
        try:
            if "audit_event" not in connection.introspection.table_names():
                return
        except DatabaseError:
            return
    event_record(Actor.system(f"keys {operation}", Purpose.SECURITY), Action.KEY,
                 resource_type="Keyset", resource_id=str(detail.get("category", "")),
                 detail={"operation": operation, **detail})  # fmt: skip
