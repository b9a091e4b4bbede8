"""Row ids (lib/ids.py): UUIDv7 with 74 random bits, each stamped with the millisecond it is
made in, whether one at a time or by new_ids."""

from __future__ import annotations

import time
import uuid

from rempart.lib.ids import id_at, new_id, new_ids


def _ms(value: uuid.UUID) -> int:
    return value.int >> 80


def test_ids_are_version_7_of_the_rfc_variant() -> None:
    for made in [new_id(), *new_ids(50), id_at(1_700_000_000_000)]:
        assert made.version == 7
        assert made.variant == uuid.RFC_4122
        assert made.is_safe is uuid.SafeUUID.unknown
        assert uuid.UUID(str(made)) == made  # a plain UUID, equal to its parsed text


def test_id_at_keeps_the_millisecond_and_the_random_bits() -> None:
    bits = (1 << 74) - 1
    made = id_at(1_700_000_000_123, bits)
    assert _ms(made) == 1_700_000_000_123
    # every bit but the version's four and the variant's two comes from the 74 random ones
    assert made.int & ((1 << 80) - 1) == (0x7 << 76) | (0xFFF << 64) | (0b10 << 62) | (1 << 62) - 1
    assert id_at(1_700_000_000_123, 0).int & ((1 << 80) - 1) == (0x7 << 76) | (0b10 << 62)


def test_new_ids_are_stamped_one_at_a_time_with_the_time_they_are_made() -> None:
    before = time.time_ns() // 1_000_000
    made = new_ids(200_000)  # longer than a millisecond to make, on any machine
    after = time.time_ns() // 1_000_000
    stamps = [_ms(i) for i in made]
    assert before <= stamps[0] and stamps[-1] <= after
    assert stamps == sorted(stamps)
    assert len(set(stamps)) > 1  # not one millisecond for the lot (the canaries' tell)
    assert len(set(made)) == len(made)


def test_new_ids_random_bits_are_fresh() -> None:
    made = new_ids(1000)
    low = [i.int & ((1 << 62) - 1) for i in made]
    assert len(set(low)) == len(low)
    # each of the 62 low bits is set in about half the ids (a stuck bit or a repeated stream
    # would not be)
    for bit in range(62):
        assert 350 < sum(value >> bit & 1 for value in low) < 650
    assert new_ids(0) == []
