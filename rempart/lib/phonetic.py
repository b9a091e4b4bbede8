"""A French phonetic code for family names, so DUPONT finds DUPOND and GAUTHIER finds GAUTIER.

In the spirit of Soundex FR / Phonex: French spelling rules collapse to one code per sound. No
maintained Python library implements a French phonetic algorithm, hence these few rules.
"""

from __future__ import annotations

import re

from rempart.lib.caching import short_lru_cache
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
