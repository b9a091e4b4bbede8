"""A French phonetic code for family names, so DUPONT finds DUPOND and GAUTHIER finds GAUTIER.

In the spirit of Soundex FR / Phonex: French spelling rules collapse to one code per sound. No
maintained Python library implements a French phonetic algorithm, hence these few rules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rempart.lib.caching import ColumnMemo, short_lru_cache
from rempart.lib.normalise import fold_name

# Ordered rewrites on an upper-case A-Z string; each line is one French spelling rule.
_RULES: tuple[tuple[str, str], ...] = (
    (r"[0-9]", ""),
    (r"^MAC", "MAK"),
    (r"SCH", "X"),
    (r"CH", "X"),
    (r"SH", "X"),
    (r"PH", "F"),
    (r"GH", "G"),
    (r"H", ""),
    (r"BV", "V"),
    (r"CK|CQ|QU|Q", "K"),
    (r"C(?=[EIY])", "S"),
    (r"C", "K"),
    (r"G(?=[EIY])", "J"),
    (r"GU(?=[AEIOY])", "G"),
    (r"W", "V"),
    (r"Y", "I"),
    (r"Z", "S"),
    (r"EAU|AU", "O"),
    (r"OU", "U"),
    (r"(?<=[AEIOU])S(?=[AEIOU])", "Z"),
    (r"(AI|EI)N(?![AEIOU])", "1"),
    (r"[IU]N(?![AEIOUN])|IM(?![AEIOUM])", "1"),
    (r"[AE]N(?![AEIOUN])|[AE]M(?![AEIOUM])", "2"),
    (r"ON(?![AEIOUN])|OM(?![AEIOUM])", "3"),
    (r"AI|EI|ET$|ER$|EZ$", "E"),
    (r"([A-Z123])\1+", r"\1"),
    (r"(?<=.)[STDXP]$", ""),
    (r"(?<=..)E$", ""),
)
_COMPILED = tuple((re.compile(pattern), repl) for pattern, repl in _RULES)
# For each rule, letters one of which its match must hold (None: no shortcut): a rule whose
# letters are absent is skipped, not run (a third of the cost of a code). tests/test_normalise.py
# checks that the shortcut gives the codes of the rules run one by one.
_NEEDS: tuple[str | None, ...] = (
    None, "M", "S", "C", "S", "P", "G", "H", "B", "CQ", "C", "C", "G", "G", "W", "Y", "Z", "U",
    "U", "S", "N", "NM", "NM", "NM", "EI", None, "STDXP", "E",
)  # fmt: skip
_GUARDED = tuple(zip(_COMPILED, _NEEDS, strict=True))


def _rewritten(code: str) -> str:
    for (pattern, repl), needs in _GUARDED:
        if needs is None or any(letter in code for letter in needs):
            code = pattern.sub(repl, code)
    return code


# 2**18 codes: the 250,000 family names of a generated group, or a legacy file's distinct names
# (about 100,000 a worker at 760,000 rows) without eviction: 65 MB a process when full (measured
# on random names), reached only by the bulk paths
@short_lru_cache(maxsize=1 << 18)
def phonetic_code(name: str) -> str:
    """The phonetic code of a name; the empty string when nothing pronounceable is left."""
    return _rewritten(fold_name(name))


# The rules over many names at once, joined by newlines: each rule one regex pass over them all
# instead of one call per name (about forty times less for a batch of distinct names). The rules
# read the same there: no pattern matches a newline or lets a look-around cross one, and ^ and $
# (MULTILINE) stand at each name's ends (tests/test_normalise.py compares the two).
_LINES = tuple((re.compile(pattern, re.MULTILINE), repl) for pattern, repl in _RULES)


def _codes_of(names: list[str]) -> list[str]:
    if not names:
        return []
    joined = "\n".join(map(fold_name, names))
    for pattern, repl in _LINES:
        joined = pattern.sub(repl, joined)
    return joined.split("\n")


# A bulk load's names (a legacy file's 150,000 distinct ones), each computed once per process.
_CODES = ColumnMemo(_codes_of, size=1 << 18, many=True)


def phonetic_codes(names: Sequence[str]) -> list[str]:
    """phonetic_code of each name, for bulk loads."""
    return _CODES(names)
