"""An integrator's file (or a leaked sample given to the analyser) of long distinct values,
against the caches of file values: the memory a process gains through the phonetic-code cache
as it is (`lib/caching.short_lru_cache`: short keys only) and through a plain LRU cache of the
same depth (what it was before 2026-12-05), in one run.

Usage: .venv/bin/python bench/long_values.py [--names 3000] [--length 100000]
"""

from __future__ import annotations

import argparse
import gc
import random
import string
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rempart.lib import phonetic


def rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def grown(code: Callable[[str], str], names: int, length: int) -> float:
    rnd = random.Random(7)
    gc.collect()
    before = rss_mib()
    for _ in range(names):
        code("".join(rnd.choices(string.ascii_uppercase, k=length)))
    return rss_mib() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--names", type=int, default=3000)
    parser.add_argument("--length", type=int, default=100_000)
    args = parser.parse_args()
    bounded = grown(phonetic.phonetic_code, args.names, args.length)
    plain_lru = lru_cache(maxsize=1 << 18)(phonetic.phonetic_code.__wrapped__)
    unbounded = grown(plain_lru, args.names, args.length)
    print(f"{args.names:,} distinct names of {args.length:,} characters through the phonetic code:")
    print(f"  short_lru_cache (keys of at most 128 characters): RSS +{bounded:,.0f} MiB")
    print(f"  lru_cache of the same depth (before):              RSS +{unbounded:,.0f} MiB")


if __name__ == "__main__":
    main()
