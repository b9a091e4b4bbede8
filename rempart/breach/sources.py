"""Where a sample's patients are (establishments, services), and where the sample came from:
an export (its canary rows; its rows' watermark and order), the database itself (its canary
patients, read by no account), or an account (whose reads best cover the matched patients)."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import Count

from rempart.access.models import CanaryMark
from rempart.access.policy import canary_tag
from rempart.audit.models import Event, EventPatient
from rempart.care.models import Stay
from rempart.directory.models import Establishment, Service
from rempart.exports import marks
from rempart.exports.models import ExportRequest, ExportStatus
from rempart.lib.normalise import fold_email, fold_name, fold_phone
from rempart.patients.models import PatientIdentifier
from rempart.vault.keystore import get_vault

if TYPE_CHECKING:
    from rempart.breach.analyse import Match, Record, Row

# Watermark bits kept but for a slip; against "by chance": 1 in 4 notations, 1 in 2 spellings.
ATTRIBUTED = 20.0  # nats of log-likelihood: e^20 to one


def _chunks(ids: list[uuid.UUID], size: int = 20_000) -> Iterable[list[uuid.UUID]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def where(matched: set[uuid.UUID]) -> dict[str, Any]:
    """The establishments and services of the matched patients (their IPPs, their stays)."""
    ids = sorted(matched, key=lambda u: u.bytes)
    places: Counter[uuid.UUID] = Counter()
    services: Counter[uuid.UUID] = Counter()
    ipp_table = PatientIdentifier._meta.db_table
    stay_table = Stay._meta.db_table
    if connection.vendor == "postgresql" and ids:
        with transaction.atomic(), connection.cursor() as cursor:
            _leak_table(cursor, ids)
            cursor.execute(f"SELECT i.establishment_id, count(*) FROM {ipp_table} i "  # noqa: S608
                           "JOIN leak_ids l ON l.id = i.patient_id GROUP BY 1")  # fmt: skip
            places.update(dict(cursor.fetchall()))
            cursor.execute(f"SELECT s.service_id, count(DISTINCT s.patient_id) FROM {stay_table} s "  # noqa: S608
                           "JOIN leak_ids l ON l.id = s.patient_id GROUP BY 1")  # fmt: skip
            services.update(dict(cursor.fetchall()))
    else:
        for chunk in _chunks(ids, 500):
            places.update(PatientIdentifier.objects.filter(patient_id__in=chunk)
                          .values_list("establishment_id", flat=True))  # fmt: skip
            for service_id, patient_count in (
                Stay.objects.filter(patient_id__in=chunk).values("service_id")
                .annotate(n=Count("patient_id", distinct=True)).values_list("service_id", "n")
            ):  # fmt: skip
                services[service_id] += patient_count
    names = {e.pk: e for e in Establishment.objects.filter(pk__in=list(places))}
    service_names = {s.pk: s for s in Service.objects.filter(pk__in=list(services))
                     .select_related("establishment")}  # fmt: skip
    return {
        "establishments": [{"name": names[k].name, "finess": names[k].finess, "patients": n}
                           for k, n in places.most_common() if k in names],
        "services": [{"name": service_names[k].name,
                      "establishment": service_names[k].establishment.name, "patients": n}
                     for k, n in services.most_common(15) if k in service_names],
    }  # fmt: skip


def _leak_table(cursor: Any, ids: list[uuid.UUID]) -> None:
    """The matched patients' ids in a temporary table (dropped at the commit), for joins."""
    cursor.execute("CREATE TEMP TABLE IF NOT EXISTS leak_ids (id uuid) ON COMMIT DROP")
    cursor.execute("TRUNCATE leak_ids")
    with cursor.cursor.copy("COPY leak_ids (id) FROM STDIN") as copy:
        for pid in ids:
            copy.write_row((pid,))
    cursor.execute("ANALYZE leak_ids")


def _canary_key(values: dict[str, str]) -> set[str]:
    keys = set()
    if values.get("email"):
        keys.add("e:" + fold_email(values["email"]))
    for column in ("telephone_portable", "telephone_fixe"):
        if values.get(column):
            keys.add("p:" + fold_phone(values[column]))
    if values.get("matricule_ins"):
        keys.add("n:" + values["matricule_ins"])
    if values.get("nom_naissance") and values.get("date_naissance"):
        keys.add(f"b:{fold_name(values['nom_naissance'])}|{values['date_naissance']}")
    return keys


def _row_keys(row: Row) -> set[str]:
    keys = set()
    if row.email:
        keys.add("e:" + row.email)
    keys.update("p:" + digits for digits, _ in row.phones)
    if row.nir:
        keys.add("n:" + row.nir)
    if row.birth_date:
        keys.update(f"b:{fold_name(f)}|{row.birth_date.isoformat()}" for f in row.families)
    return keys


def _export_marks(export: ExportRequest, rows: list[Row], matches: list[Match],
                  records: dict[uuid.UUID, Record]) -> dict[str, Any]:  # fmt: skip
    """How the sample's rows of this export's patients agree with its watermark, and whether
    they keep its order."""
    from rempart.breach.analyse import log_likelihood
    from rempart.exports.services import mark_key

    members = bytes(export.patient_ids or b"")
    inside = {members[i : i + 16] for i in range(0, len(members), 16)}
    key = mark_key(export.pk, export.mark_key_id)
    llr = 0.0
    agree = seen = 0
    order: list[int] = []
    for match in matches:
        if match.patient_id.bytes not in inside:
            continue
        mark = marks.row_mark(key, match.patient_id)
        order.append(mark.order)
        row, record = rows[match.row], records[match.patient_id]
        for digits, style in row.phones:
            which = record.phones.get(digits)
            if style is None or which is None:
                continue
            want = mark.phone_mobile if which == "phone_mobile" else mark.phone_home
            seen += 1
            agree += style == want
            llr += log_likelihood(int(style == want), 1, 0.25)
        for style, want in ((row.street, mark.street), (row.saint, mark.saint)):
            if style is not None:
                seen += 1
                agree += style == want
                llr += log_likelihood(int(style == want), 1, 0.5)
    rising = sum(1 for a, b in itertools.pairwise(order) if b > a)
    return {"rows_of_export": len(order), "mark_seen": seen, "mark_agree": agree,
            "log_likelihood": round(llr, 1),
            "order": round(rising / (len(order) - 1), 3) if len(order) > 2 else None}  # fmt: skip


def find_source(rows: list[Row], matches: list[Match],
                records: dict[uuid.UUID, Record]) -> dict[str, Any]:  # fmt: skip
    exports = []
    produced = list(ExportRequest.objects.filter(
        status__in=(ExportStatus.READY, ExportStatus.EXPIRED)
    ).select_related("requested_by", "decided_by", "establishment"))  # fmt: skip
    # The exports' canary rows by their keys first (a few thousand at most), then one pass
    # over the sample keeping only the keys that are one of them.
    planted_keys = {id(export): [_canary_key(values) for values in
                                 (export.canary_rows or {}).get("rows", [])]
                    for export in produced}  # fmt: skip
    wanted = set().union(*(k for keys in planted_keys.values() for k in keys))
    seen: set[str] = set()
    if wanted:
        for row in rows:
            seen |= _row_keys(row) & wanted
    for export in produced:
        canary_hits = sum(1 for keys in planted_keys[id(export)] if keys & seen)
        found = _export_marks(export, rows, matches, records)
        if not canary_hits and not found["rows_of_export"]:
            continue
        attributed = (
            canary_hits > 0
            or found["log_likelihood"] >= ATTRIBUTED
            or ((found["order"] or 0) > 0.95 and found["rows_of_export"] >= 30)
        )
        exports.append({
            "id": str(export.pk), "requested_by": export.requested_by.get_username(),
            "approved_by": export.decided_by.get_username() if export.decided_by else "",
            "produced_at": export.produced_at.isoformat() if export.produced_at else None,
            "establishment": export.establishment.name, "purpose": export.purpose,
            "canary_rows_found": canary_hits, "attributed": attributed, **found,
        })  # fmt: skip
    exports.sort(key=lambda e: (not e["attributed"], -e["canary_rows_found"],
                                -e["log_likelihood"]))  # fmt: skip
    matched = sorted({m.patient_id for m in matches}, key=lambda u: u.bytes)
    canaries = _db_canaries(matched)
    in_exports: set[bytes] = set()
    for export in produced:
        if any(e["id"] == str(export.pk) and e["attributed"] for e in exports):
            members = bytes(export.patient_ids or b"")
            in_exports.update(members[i : i + 16] for i in range(0, len(members), 16))
    canaries["in_attributed_export"] = sum(1 for pid in canaries.pop("ids")
                                           if pid.bytes in in_exports)  # fmt: skip
    accounts = _accounts(matched)
    if any(e["attributed"] for e in exports):
        verdict = "export"
    elif matched:
        verdict = "hors_export"  # a database, a backup, or an account
    else:
        verdict = "aucune"
    return {"verdict": verdict, "exports": exports, "db_canaries": canaries,
            "accounts": accounts}  # fmt: skip


def _db_canaries(matched: list[uuid.UUID]) -> dict[str, Any]:
    """The database's canary patients in the sample, and whether any account ever opened them
    (a read locks the account: none read means the database or a backup)."""
    indexer = get_vault().indexer
    marks_stored = set(bytes(t) for t in CanaryMark.objects.values_list("tag", flat=True))
    found = [pid for pid in matched
             if any(canary_tag(pid, k) in marks_stored for k in indexer.key_ids)]  # fmt: skip
    read_by = sorted(set(Event.objects.filter(patient_id__in=found, action="read")
                         .values_list("username", flat=True)))  # fmt: skip
    return {"found": len(found), "read_by": read_by, "ids": found}


def _accounts(matched: list[uuid.UUID], limit: int = 5) -> list[dict[str, Any]]:
    """The accounts whose reads and searches touched most of the matched patients."""
    if not matched:
        return []
    seen: Counter[str] = Counter()
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            _leak_table(cursor, matched)
            cursor.execute(
                "SELECT e.username, count(DISTINCT ep.patient_id) FROM audit_event_patient ep "
                "JOIN leak_ids l ON l.id = ep.patient_id JOIN audit_event e ON e.id = ep.event_id "
                "WHERE e.user_id IS NOT NULL GROUP BY e.username ORDER BY 2 DESC LIMIT %s",
                [limit],
            )
            seen.update(dict(cursor.fetchall()))
    else:
        for chunk in _chunks(matched, 500):
            events = EventPatient.objects.filter(patient_id__in=chunk)
            pairs = set(events.values_list("event_id", "patient_id"))
            users = dict(Event.objects.filter(pk__in={e for e, _ in pairs}, user_id__isnull=False)
                         .values_list("id", "username"))  # fmt: skip
            per_user: dict[str, set[uuid.UUID]] = {}
            for event_id, pid in pairs:
                if event_id in users:
                    per_user.setdefault(users[event_id], set()).add(pid)
            seen.update({u: len(p) for u, p in per_user.items()})
    return [{"username": u, "patients": n, "share": round(n / len(matched), 4)}
            for u, n in seen.most_common(limit)]  # fmt: skip
