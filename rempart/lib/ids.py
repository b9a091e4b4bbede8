"""Row ids (UUIDv7: time-ordered, so B-tree inserts stay local).

Every id is RFC 9562's UUIDv7 with 74 random bits after the millisecond and no counter. A
counter (the uuid-utils package's, the one this replaces, and Python 3.14's: the ids of one
millisecond numbered in sequence) would give the ids of a table a structure a row slipped in
later could not fit: a canary (access/canaries.py) placed between two ids numbered c and c+1
would repeat a number, and the thief holding the dump would find it. With random bits, ids made
in the same millisecond sort in random order, and a row placed at a random point of time and
bits is one of them. The bits come from os.urandom, as a canary's do: a seeded generator's
stream could be told from another's.
"""

from __future__ import annotations

import os
import time
import uuid

import numpy as np

_VERSION = 0x7 << 76
_VARIANT = 0b10 << 62
_RAND_A = 0xFFF << 64  # the 12 bits after the version
_RAND_B = (1 << 62) - 1  # the 62 bits after the variant
_MS = 2**48 - 1
_UNKNOWN = uuid.SafeUUID.unknown  # an enum member's look-up costs a fifth of an id


def id_at(ms: int, random: int | None = None) -> uuid.UUID:
    """The UUIDv7 of this millisecond (since 1970) with these 74 random bits (fresh ones when
    None)."""
    bits = int.from_bytes(os.urandom(10)) if random is None else random
    return uuid_of(
        (ms & _MS) << 80 | _VERSION | (bits >> 62 << 64) & _RAND_A | _VARIANT | bits & _RAND_B
    )


def uuid_of(value: int) -> uuid.UUID:
    """uuid.UUID(int=value) without its argument checks, for a value built to be a 128-bit
    UUIDv7 (here and by the generator): a third of the cost, for millions of ids."""
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", _UNKNOWN)
    return made


def new_id() -> uuid.UUID:
    return id_at(time.time_ns() // 1_000_000)


def new_ids(count: int) -> list[uuid.UUID]:
    """`count` ids as `new_id` makes them one after the other, each stamped with the
    millisecond it is made in (never one millisecond for a whole batch: a canary placed among
    thousands of ids sharing one millisecond would sit in an empty one beside it), their random
    bits drawn from the system in one call: half new_id's cost an id."""
    pool, now, from_bytes = os.urandom(10 * count), time.time_ns, int.from_bytes
    return [
        id_at(now() // 1_000_000, from_bytes(pool[k : k + 10])) for k in range(0, 10 * count, 10)
    ]


def new_ids_bytes(count: int) -> list[bytes]:
    """`count` new ids of this millisecond as their 16 bytes each (bulk paths)."""
    block = np.frombuffer(os.urandom(16 * count), dtype=np.uint8).reshape(count, 16).copy()
    block[:, :6] = np.frombuffer((time.time_ns() // 1_000_000).to_bytes(6, "big"), np.uint8)
    block[:, 6] = 0x70 | block[:, 6] & 0x0F
    block[:, 8] = 0x80 | block[:, 8] & 0x3F
    data = block.tobytes()
    return [data[i : i + 16] for i in range(0, len(data), 16)]
