"""Row ids made in the application (UUIDv7: time-ordered, so B-tree inserts stay local)."""

from __future__ import annotations

import uuid

import uuid_utils
from uuid_utils import compat


def new_id() -> uuid.UUID:
    return compat.uuid7()


def new_id_bytes() -> bytes:
    """A new id as its 16 bytes (bulk paths: no uuid.UUID object to make or pickle)."""
    return uuid_utils.uuid7().bytes
