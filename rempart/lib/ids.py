"""Row ids made in the application (UUIDv7: time-ordered, so B-tree inserts stay local)."""

from __future__ import annotations

import uuid

from uuid_utils import compat


def new_id() -> uuid.UUID:
    return compat.uuid7()
