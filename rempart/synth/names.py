"""Family and given names that are distributed like France's, not like a short list.

Family names: Faker's fr_FR list (the 400 commonest, in INSEE rank order) then a long tail of
plausible rare names (French stems and endings, regional forms, particles, hyphenated names),
drawn with Zipf-Mandelbrot weights 1 / (rank + 30): MARTIN comes out near 0.35 % of people, the
first 100 names cover about 15 %, and most names are rare. Given names follow the fashion of the
birth decade.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from faker.providers.person.fr_FR import Provider as FrenchPeople

from rempart.synth.data import GIVEN_NAMES_BY_DECADE

ZIPF_SHIFT = 30.0

_STEMS = (
    "BAR",
    "BEL",
    "BER",
    "BLAN",
    "BOIS",
    "BON",
    "BOUCH",
    "BOUR",
    "BRI",
    "BRUN",
    "CAR",
    "CHAB",
    "CHAM",
    "CHAP",
    "CHAR",
    "CHAU",
    "CHEV",
    "CLAV",
    "COL",
    "COUR",
    "CRO",
    "DAL",
    "DEM",
    "DOR",
    "DUC",
    "DUM",
    "DUR",
    "FAB",
    "FAV",
    "FER",
    "FOL",
    "FONT",
    "FOUR",
    "GAB",
    "GAL",
    "GAR",
    "GAUD",
    "GEN",
    "GIL",
    "GIR",
    "GOD",
    "GRAND",
    "GROS",
    "GUIL",
    "HAM",
    "HOUD",
    "JAC",
    "JOL",
    "JOUB",
    "LAB",
    "LAC",
    "LAF",
    "LAM",
    "LAND",
    "LAV",
    "LEB",
    "LEM",
    "LEV",
    "MAL",
    "MAN",
    "MARCH",
    "MAS",
    "MAUR",
    "MER",
    "MOL",
    "MON",
    "MONT",
    "MOR",
    "MOUL",
    "NAV",
    "NOG",
    "PAG",
    "PAR",
    "PAS",
    "PEL",
    "PER",
    "PEY",
    "PIC",
    "PIN",
    "PLAN",
    "POM",
    "PONS",
    "POUL",
    "PRAD",
    "RAB",
    "RAV",
    "REB",
    "REN",
    "RIB",
    "RIC",
    "RIV",
    "ROB",
    "ROCH",
    "ROM",
    "ROUG",
    "SAB",
    "SAL",
    "SAUV",
    "SEG",
    "SOUL",
    "TAB",
    "TARD",
    "TESS",
    "THIB",
    "TOUR",
    "TRAV",
    "VAL",
    "VAND",
    "VER",
    "VID",
    "VIL",
    "VIN",
    "BÉR",
    "HÉR",
    "FÉV",
    "GÉR",
    "THÉV",
    "MÉN",
    "RÉN",
    "PÉR",
    "LÉG",
    "DÉL",
)
_MIDDLES = ("", "", "", "", "AR", "ER", "IL", "OL", "AN", "ON", "ET", "AV", "IN", "OUR", "ES")
_ENDINGS = (
    "ARD",
    "AUD",
    "EAU",
    "ET",
    "OT",
    "IN",
    "IER",
    "ON",
    "AS",
    "OU",
    "EL",
    "ELLE",
    "OUX",
    "Y",
    "AC",
    "AT",
    "ANT",
    "ERT",
    "AIS",
    "AIN",
    "ARDIN",
    "ELIN",
    "ETTE",
    "IOT",
    "OUD",
    "ERON",
    "IAT",
    "ILLE",
    "ERE",
    "ENS",
    "ERIE",
    "ALLE",
    "AIX",
    "EY",
    "UT",
    "IC",
    "ESSE",
    "OUIN",
    "ANDE",
    "ANS",
)
_REGIONAL = (
    ("KER", ("VAREC", "GOAT", "ZAOUEN", "MAREC", "GUEN", "LANN", "DREN", "HOAS")),  # Brittany
    ("", ("MANN", "INGER", "BACH", "HOLZ", "WILLER", "HEIM")),  # Alsace, Lorraine
    ("", ("INI", "ETTI", "ONI", "ELLI", "UCCI")),  # Corsica, Italy
    ("ETCHE", ("VERRY", "GARAY", "BARNE", "PARE")),  # Basque country
)
_PARTICLES = ("LE ", "LA ", "DE ", "DU ", "D'", "DE LA ", "DES ")


def _tail_names(rng: np.random.Generator, wanted: int, taken: set[str]) -> list[str]:
    """Made-up names in order of first appearance (the order gives their Zipf rank). Attempts
    are drawn in blocks of arrays: one scalar draw from NumPy costs a microsecond, and a
    250,000-name pool takes about five million attempts."""
    names: list[str] = []
    seen = set(taken)
    attempts, limit = 0, wanted * 20
    while len(names) < wanted and attempts < limit:
        size = min(max(4096, 2 * (wanted - len(names))), limit - attempts)
        attempts += size
        regional = (rng.random(size) < 0.08).tolist()
        stems = rng.integers(len(_STEMS), size=size).tolist()
        regions = rng.integers(len(_REGIONAL), size=size).tolist()
        region_endings = rng.random(size).tolist()
        middles = rng.integers(len(_MIDDLES), size=size).tolist()
        endings = rng.integers(len(_ENDINGS), size=size).tolist()
        particles = np.where(
            rng.random(size) < 0.06, rng.integers(len(_PARTICLES), size=size), -1
        ).tolist()
        for i in range(size):
            stem = _STEMS[stems[i]]
            if regional[i]:
                prefix, choices = _REGIONAL[regions[i]]
                name = (prefix or stem) + choices[int(region_endings[i] * len(choices))]
            else:
                name = stem + _MIDDLES[middles[i]] + _ENDINGS[endings[i]]
            if particles[i] >= 0:
                name = _PARTICLES[particles[i]] + name
            if name not in seen:
                seen.add(name)
                names.append(name)
                if len(names) == wanted:
                    break
    return names


@dataclass(frozen=True)
class FamilyNames:
    names: tuple[str, ...]
    weights: np.ndarray
    cumulative: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # What Generator.choice(p=weights) computes on every call (a pass over the whole pool):
        # computed once, the draws below are the very same.
        cumulative = self.weights.cumsum()
        object.__setattr__(self, "cumulative", cumulative / cumulative[-1])

    @classmethod
    def build(cls, rng: np.random.Generator, size: int) -> FamilyNames:
        head = [n.upper() for n in FrenchPeople.last_names]
        head = list(dict.fromkeys(head))
        tail = _tail_names(rng, max(0, size - len(head)), set(head))
        names = tuple(head + tail)
        ranks = np.arange(1, len(names) + 1, dtype=np.float64)
        weights = 1.0 / (ranks + ZIPF_SHIFT)
        return cls(names=names, weights=weights / weights.sum())

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        drawn: np.ndarray = self.cumulative.searchsorted(rng.random(n), side="right")
        return drawn.astype(np.int64)


class GivenNames:
    """Given names by sex and birth decade; one in five drawn from Faker's wider lists."""

    def __init__(self) -> None:
        self._faker = {
            "M": tuple(FrenchPeople.first_names_male),
            "F": tuple(FrenchPeople.first_names_female),
        }
        top = len(next(iter(GIVEN_NAMES_BY_DECADE.values()))["M"])
        ranks = np.arange(1, top + 1, dtype=np.float64)
        w = 1.0 / (ranks + 3.0)
        self._cumulative = np.cumsum(w / w.sum()).tolist()

    def draw(self, rng: np.random.Generator, sex: str, birth_year: int, count: int) -> list[str]:
        return self.pick(sex, birth_year, count, rng.random(3).tolist(), rng.random(3).tolist())

    def pick(
        self,
        sex: str,
        birth_year: int,
        count: int,
        source: Sequence[float],
        choice: Sequence[float],
    ) -> list[str]:
        """Up to `count` distinct given names from uniform draws (`source` picks fashion or the
        wider list, `choice` the name), so callers can draw for many people at once."""
        decade = min(max(birth_year // 10 * 10, 1920), 2020)
        key = "F" if sex == "F" else "M"
        fashion = GIVEN_NAMES_BY_DECADE[decade][key]
        wider = self._faker[key]
        chosen: list[str] = []
        for k in range(count):
            if source[k] < 0.8:
                # bisect_left is np.searchsorted's default side, on the same floats
                name = fashion[min(bisect_left(self._cumulative, choice[k]), len(fashion) - 1)]
            else:
                name = wider[int(choice[k] * len(wider))]
            if name not in chosen:
                chosen.append(name)
        return chosen
