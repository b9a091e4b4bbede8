"""Checking the trail: chain, signatures, sequence gaps, reordering, deletions, insertions after
sealing, truncation (against the last checkpoint and the file outside the database).

Reports the first broken place in plain words; `ok` is False whenever anything was tampered with.
Works with the public verification key alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Max, Min
from django.utils import timezone

from rempart.audit import sinks
from rempart.audit.models import Checkpoint, Event, Link
from rempart.audit.services import canonical, checkpoint_payload, checkpoint_record
from rempart.vault import crypto
from rempart.vault.keystore import get_verifier

CHUNK = 5000


@dataclass
class Report:
    events: int = 0
    links: int = 0
    checkpoints: int = 0
    unsealed: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        out = [
            f"{self.links} événements chaînés, {self.checkpoints} points de contrôle signés, "
            f"{self.unsealed} événements pas encore scellés."
        ]
        if self.problems:
            out.append(f"JOURNAL ALTÉRÉ — premier problème : {self.problems[0]}")
            out.extend(f"  aussi : {p}" for p in self.problems[1:10])
        else:
            out.append("Journal intègre : chaîne, signatures et copie externe concordent.")
        out.extend(f"Attention : {w}" for w in self.warnings)
        return out


def _links_with_events() -> Any:
    """(link, event or None) in chain order, streamed by chunks of seq."""
    last = 0
    while True:
        links = list(Link.objects.filter(seq__gt=last).order_by("seq")[:CHUNK])
        if not links:
            return
        events = Event.objects.in_bulk([link.event_id for link in links])
        for link in links:
            yield link, events.get(link.event_id)
        last = links[-1].seq


def verify_trail(*, public_key: Path | None = None, checkpoint_file: Path | None = None) -> Report:
    report = Report()
    verifier = get_verifier(public_key)
    checkpoints = {cp.seq: cp for cp in Checkpoint.objects.order_by("seq")}
    report.checkpoints = len(checkpoints)

    for signed in checkpoints.values():
        if not verifier.verify(bytes(signed.signature), checkpoint_payload(signed)):
            report.problems.append(
                f"le point de contrôle n° {signed.seq} ({_when(signed.signed_at)}) porte une "
                "signature qui n'est pas celle de la clé d'audit : il a été fabriqué ou modifié."
            )

    digest, expected = crypto.CHAIN_GENESIS, 1
    ordered = sorted(checkpoints)
    covering = 0  # index in `ordered` of the checkpoint that covers the current link
    late = dt.timedelta(seconds=settings.REMPART_AUDIT_MAX_TRANSACTION)
    for link, event in _links_with_events():
        report.links += 1
        if link.seq != expected:
            report.problems.append(
                f"maillons {expected} à {link.seq - 1} absents de la chaîne : des événements ont "
                "été retirés."
            )
            break
        if event is None:
            report.problems.append(
                f"l'événement n° {link.event_id} (maillon {link.seq}) a été supprimé."
            )
            break
        digest = crypto.chain_digest(digest, canonical(event))
        if digest != bytes(link.digest):
            report.problems.append(
                f"l'événement n° {event.id} (maillon {link.seq}, {_when(event.at)}, "
                f"{event.action} par {event.username}) ne correspond plus à la chaîne : il a été "
                "modifié, ou déplacé, après avoir été scellé."
            )
            break
        while covering < len(ordered) and ordered[covering] < link.seq:
            covering += 1
        if covering > 0 and not report.problems:
            before = checkpoints[ordered[covering - 1]]
            if event.at < before.signed_at - late:
                report.problems.append(
                    f"l'événement n° {event.id}, daté du {_when(event.at)}, n'a été scellé "
                    f"qu'après le point de contrôle du {_when(before.signed_at)} : il a été "
                    "ajouté après coup."
                )
        cp = checkpoints.get(link.seq)
        if cp is not None and bytes(cp.head) != digest:
            report.problems.append(
                f"la chaîne jusqu'au maillon {link.seq} ne correspond pas au point de contrôle "
                "signé : des événements ont été réécrits."
            )
            break
        expected += 1

    last_cp = max(checkpoints) if checkpoints else 0
    if not report.problems and report.links < last_cp:
        report.problems.append(
            f"le journal s'arrête au maillon {report.links} alors que le point de contrôle signé "
            f"n° {last_cp} en garantit {last_cp} : la fin du journal a été coupée."
        )

    _compare_with_file(report, checkpoints, verifier, checkpoint_file)
    _look_for_unchained(report, checkpoints)
    report.events = Event.objects.count()
    return report


def _compare_with_file(
    report: Report, checkpoints: dict[int, Checkpoint], verifier: Any, path: Path | None
) -> None:
    path = path or sinks.checkpoint_file()
    if not path.exists():
        if checkpoints:
            report.problems.append(
                f"la copie externe des points de contrôle ({path}) est introuvable."
            )
        return
    in_file = 0
    for record in sinks.read_checkpoint_file(path):
        if "unreadable_line" in record:
            report.problems.append(
                f"ligne {record['unreadable_line']} illisible dans la copie externe."
            )
            continue
        in_file = max(in_file, int(record["seq"]))
        signature = bytes.fromhex(record["signature"])
        if not verifier.verify(signature, checkpoint_payload(record)):
            report.problems.append(
                f"le point de contrôle n° {record['seq']} de la copie externe a une signature "
                "invalide."
            )
            continue
        cp = checkpoints.get(int(record["seq"]))
        if cp is None:
            report.problems.append(
                f"le point de contrôle n° {record['seq']} de la copie externe (signé le "
                f"{record['signed_at']}) n'est plus dans la base : le journal a été tronqué "
                "ou réécrit."
            )
        elif checkpoint_record(cp) != record:
            report.problems.append(
                f"le point de contrôle n° {record['seq']} diffère entre la base et la copie "
                "externe."
            )
    newer = [seq for seq in checkpoints if seq > in_file]
    if len(newer) > 1:
        report.warnings.append(
            f"{len(newer)} points de contrôle récents manquent à la copie externe "
            "(`rempart audit seal` les y ajoute)."
        )


def _look_for_unchained(report: Report, checkpoints: dict[int, Checkpoint]) -> None:
    watermark = max((cp.watermark for cp in checkpoints.values()), default=0)
    linked = Link.objects.values("event_id")
    sneaked = Event.objects.filter(id__lte=watermark).exclude(id__in=linked)
    first = sneaked.aggregate(first=Min("id"))["first"]
    if first is not None:
        report.problems.append(
            f"l'événement n° {first} n'est pas dans la chaîne alors que tout jusqu'au n° "
            f"{watermark} a été scellé : il a été ajouté après coup."
        )
    pending = Event.objects.filter(id__gt=watermark).exclude(id__in=linked)
    report.unsealed = pending.count()
    oldest = pending.aggregate(oldest=Min("at"))["oldest"]
    if oldest is not None:
        age = (timezone.now() - oldest).total_seconds()
        if age > settings.REMPART_AUDIT_UNSEALED_WARNING:
            report.warnings.append(
                f"{report.unsealed} événements attendent d'être scellés depuis {age:.0f} s : le "
                "scelleur (`rempart audit sealer`) tourne-t-il ?"
            )
    if Event.objects.aggregate(newest=Max("id"))["newest"] is None:
        report.warnings.append("le journal est vide.")


def _when(at: dt.datetime) -> str:
    return timezone.localtime(at).strftime("%d/%m/%Y %H:%M:%S")
