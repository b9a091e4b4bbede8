"""Copies of the trail outside the database: every checkpoint appended to a JSON-lines file
(mode 0600, O_APPEND, fsync), and optionally checkpoints and events to a syslog collector in
RFC 5424 (a SIEM). An attacker who owns the database alone cannot rewrite these."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)


def checkpoint_file() -> Path:
    return Path(settings.REMPART_AUDIT_CHECKPOINT_FILE)


def read_checkpoint_file(path: Path | None = None) -> Iterator[dict[str, Any]]:
    path = path or checkpoint_file()
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    yield {"unreadable_line": number}


def _last_seq_in_file(path: Path) -> int:
    """The seq of the file's last line (read from the end: the file grows all year)."""
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 65_536))
        lines = handle.read().splitlines()
    for line in reversed(lines):
        try:
            return int(json.loads(line)["seq"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


def append_checkpoints(records: Sequence[dict[str, Any]], path: Path | None = None) -> None:
    if not records:
        return
    path = path or checkpoint_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_checkpoint_file() -> int:
    """Append to the file the checkpoints it lacks (after a crash between commit and append)."""
    from rempart.audit.models import Checkpoint
    from rempart.audit.services import checkpoint_record

    path = checkpoint_file()
    missing = Checkpoint.objects.filter(seq__gt=_last_seq_in_file(path)).order_by("seq")
    records = [checkpoint_record(cp) for cp in missing]
    append_checkpoints(records, path)
    return len(records)


@lru_cache(maxsize=1)
def _syslog() -> logging.Logger | None:
    address = settings.REMPART_AUDIT_SYSLOG
    if not address:
        return None
    from rfc5424logging import Rfc5424SysLogHandler  # type: ignore[import-untyped]

    host, _, port = address.rpartition(":")
    handler = Rfc5424SysLogHandler(
        address=(host or "127.0.0.1", int(port or 514)),
        appname="rempart-audit",
        enterprise_id=32473,  # IANA example number: set your own in production
        msg_as_utf8=False,
    )
    logger = logging.getLogger("rempart.audit.syslog")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.handlers = [handler]
    return logger


def publish(checkpoint: dict[str, Any], events: Sequence[Any]) -> None:
    """After a checkpoint commits: the file (required), then syslog when configured."""
    from rempart.audit.services import canonical

    sync_checkpoint_file()
    logger = _syslog()
    if logger is None:
        return
    try:
        if settings.REMPART_AUDIT_SYSLOG_EVENTS:
            for event in events:
                logger.info(canonical(event).decode(), extra={"msgid": "event"})
        logger.info(json.dumps(checkpoint, sort_keys=True), extra={"msgid": "checkpoint"})
    except OSError as exc:  # the file holds the checkpoint; the collector catches up later
        log.warning("syslog sink unavailable: %s", type(exc).__name__)
