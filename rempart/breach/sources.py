"""Where a sample's patients are (establishments, services), and where the sample came from:
an export (its canary rows; its rows' watermark and order), the database itself (its canary
patients, read by no account), or an account (whose reads best cover the matched patients)."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from django.db import connection, transaction
from django.db.models import Count

from rempart.audit.models import Event, EventPatient
from rempart.breach.traits import F, Traits
from rempart.care.models import Stay
from rempart.directory.models import Establishment, Service
from rempart.exports import marks
from rempart.exports.models import ExportRequest, ExportStatus
from rempart.lib.normalise import fold_email, fold_name, fold_phone
from rempart.patients.models import PatientIdentifier

if TYPE_CHECKING:
    from rempart.breach.analyse import Matches, Records

# Watermark bits kept but for a slip; against "by chance": 1 in 4 notations, 1 in 2 spellings.
ATTRIBUTED = 20.0  # nats of log-likelihood: e^20 to one


def _chunks(ids: list[uuid.UUID], size: int = 20_000) -> Iterable[list[uuid.UUID]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _uuids(ids: np.ndarray) -> list[uuid.UUID]:
    return [uuid.UUID(bytes=ids[i].tobytes()) for i in range(len(ids))]


def where(ids: np.ndarray) -> dict[str, Any]:
    """The establishments and services of the matched patients ((m, 16) id bytes): their
    IPPs, their stays."""
    places: Counter[uuid.UUID] = Counter()
    services: Counter[uuid.UUID] = Counter()
    ipp_table = PatientIdentifier._meta.db_table
    stay_table = Stay._meta.db_table
    if connection.vendor == "postgresql" and len(ids):
        with transaction.atomic(), connection.cursor() as cursor:
            _leak_table(cursor, ids)
            cursor.execute(f"SELECT i.establishment_id, count(*) FROM {ipp_table} i "  # noqa: S608
                           "JOIN leak_ids l ON l.id = i.patient_id GROUP BY 1")  # fmt: skip
            places.update(dict(cursor.fetchall()))
            cursor.execute(f"SELECT s.service_id, count(DISTINCT s.patient_id) FROM {stay_table} s "  # noqa: S608
                           "JOIN leak_ids l ON l.id = s.patient_id GROUP BY 1")  # fmt: skip
            services.update(dict(cursor.fetchall()))
    else:
        for chunk in _chunks(_uuids(ids), 500):
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


_COPY_UUID = np.dtype([("count", ">i2"), ("length", ">i4"), ("id", "V16")])


def _leak_table(cursor: Any, ids: np.ndarray) -> None:
    """The matched patients' ids in a temporary table (dropped at the commit), for joins:
    one binary COPY made by NumPy."""
    cursor.execute("CREATE TEMP TABLE IF NOT EXISTS leak_ids (id uuid) ON COMMIT DROP")
    cursor.execute("TRUNCATE leak_ids")
    rows = np.empty(len(ids), dtype=_COPY_UUID)
    rows["count"], rows["length"] = 1, 16
    rows["id"] = np.ascontiguousarray(ids).view("V16").ravel()
    with cursor.cursor.copy("COPY leak_ids (id) FROM STDIN (FORMAT binary)") as copy:
        copy.write(b"PGCOPY\n\xff\r\n\x00" + bytes(8) + rows.tobytes() + b"\xff\xff")
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


def _keys_in_sample(traits: Traits, wanted: set[str]) -> set[str]:
    """Which of these canary keys some row of the sample gives."""
    found: set[str] = set()
    by_field = {"e": F.EMAIL, "p": F.PHONE, "n": F.NIR}
    for key in wanted:
        kind, _, value = key.partition(":")
        if kind in by_field:
            code = traits.vocab[by_field[kind]].codes.get(value)
            if code is not None and (traits.codes[by_field[kind]] == code).any():
                found.add(key)
    # Family name and birth date on one row.
    wanted_pairs = {}
    for key in wanted:
        if key.startswith("b:"):
            name, _, born = key[2:].partition("|")
            code = traits.vocab[F.FAMILY].codes.get(name)
            if code is not None and born:
                wanted_pairs[(code << 22) | dt.date.fromisoformat(born).toordinal()] = key
    if wanted_pairs:
        dates = traits.codes[F.DATE][0]
        combos = np.concatenate([(traits.codes[F.FAMILY][s].astype(np.int64) << 22) | dates
                                 for s in range(traits.codes[F.FAMILY].shape[0])])  # fmt: skip
        present = np.isin(np.fromiter(wanted_pairs, dtype=np.int64), combos)
        found.update(key for key, hit in zip(wanted_pairs.values(), present, strict=True) if hit)
    return found


def _export_marks(export: ExportRequest, traits: Traits, matches: Matches,
                  records: Records) -> dict[str, Any]:  # fmt: skip
    """How the sample's rows of this export's patients agree with its watermark, and whether
    they keep its order."""
    from rempart.breach.analyse import log_likelihood
    from rempart.exports.services import mark_key

    members = np.frombuffer(bytes(export.patient_ids or b""), dtype="V16")
    matched = np.ascontiguousarray(records.ids[matches.at]).view("V16").ravel()
    inside = (np.flatnonzero(np.isin(matched, members)) if members.size and matched.size
              else np.zeros(0, np.int64))  # fmt: skip
    key = mark_key(export.pk, export.mark_key_id)
    llr = 0.0
    agree = seen = 0
    order: list[int] = []
    phones, phone_styles = traits.codes[F.PHONE], traits.styles[F.PHONE]
    theirs = records.codes[F.PHONE]
    for j in inside:
        r, at = int(matches.rows[j]), int(matches.at[j])
        mark = marks.row_mark(key, records.ids[at].tobytes())
        order.append(mark.order)
        for s in range(phones.shape[0]):
            code, style = int(phones[s][r]), int(phone_styles[s][r])
            if style < 0 or code < 0:
                continue
            if code == theirs[0][at]:
                want = mark.phone_mobile
            elif code == theirs[1][at]:
                want = mark.phone_home
            else:
                continue
            seen += 1
            agree += style == want
            llr += log_likelihood(int(style == want), 1, 0.25)
        for style, want in ((int(traits.styles[F.ADDRESS][0][r]), mark.street),
                            (int(traits.styles[F.CITY][0][r]), mark.saint)):  # fmt: skip
            if style >= 0:
                seen += 1
                agree += style == want
                llr += log_likelihood(int(style == want), 1, 0.5)
    rising = sum(1 for a, b in itertools.pairwise(order) if b > a)
    return {"rows_of_export": len(order), "mark_seen": seen, "mark_agree": agree,
            "log_likelihood": round(llr, 1),
            "order": round(rising / (len(order) - 1), 3) if len(order) > 2 else None}  # fmt: skip


def find_source(traits: Traits, matches: Matches, records: Records) -> dict[str, Any]:
    from rempart.breach.analyse import matched_positions

    exports = []
    produced = list(ExportRequest.objects.filter(
        status__in=(ExportStatus.READY, ExportStatus.EXPIRED)
    ).select_related("requested_by", "decided_by", "establishment"))  # fmt: skip
    # The exports' canary rows by their keys (a few thousand at most), looked for in the
    # sample's vocabularies.
    planted_keys = {id(export): [_canary_key(values) for values in
                                 (export.canary_rows or {}).get("rows", [])]
                    for export in produced}  # fmt: skip
    wanted = set().union(*(k for keys in planted_keys.values() for k in keys))
    seen = _keys_in_sample(traits, wanted) if wanted else set()
    for export in produced:
        canary_hits = sum(1 for keys in planted_keys[id(export)] if keys & seen)
        found = _export_marks(export, traits, matches, records)
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
    matched = matched_positions(matches)
    canary_ids = records.ids[matched[records.canary[matched]]]
    canaries = _db_canaries(_uuids(canary_ids))
    in_exports: set[bytes] = set()
    for export in produced:
        if any(e["id"] == str(export.pk) and e["attributed"] for e in exports):
            members = bytes(export.patient_ids or b"")
            in_exports.update(members[i : i + 16] for i in range(0, len(members), 16))
    canaries["in_attributed_export"] = sum(1 for i in range(len(canary_ids))
                                           if canary_ids[i].tobytes() in in_exports)  # fmt: skip
    accounts = _accounts(records.ids[matched])
    if any(e["attributed"] for e in exports):
        verdict = "export"
    elif matched.size:
        verdict = "hors_export"  # a database, a backup, or an account
    else:
        verdict = "aucune"
    return {"verdict": verdict, "exports": exports, "db_canaries": canaries,
            "accounts": accounts}  # fmt: skip


def _db_canaries(found: list[uuid.UUID]) -> dict[str, Any]:
    """The database's canary patients in the sample (their marks were checked as they were
    decrypted), and whether any account ever opened them (a read locks the account: none
    read means the database or a backup)."""
    read_by = sorted(set(Event.objects.filter(patient_id__in=found, action="read")
                         .values_list("username", flat=True)))  # fmt: skip
    return {"found": len(found), "read_by": read_by}


def _accounts(ids: np.ndarray, limit: int = 5) -> list[dict[str, Any]]:
    """The accounts whose reads and searches touched most of the matched patients."""
    if not len(ids):
        return []
    matched = ids
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
        for chunk in _chunks(_uuids(ids), 500):
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
