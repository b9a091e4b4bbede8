"""The database thief's attack on the blind indexes: from a dump alone (no key) and the source
code, recover family names and birth dates. Played against the database as stored now ("after")
and against the same patients with the blind indexes of the first design ("before": exact name
and phonetic code at 10 bits each, birth date at 12, the identity compound at 24; computed here
with a fresh key, as that schema would have stored them).

Usage: .venv/bin/python bench/index_attack.py [--patients N] [--seed S] [--reuse DATA_DIR]
Creates (and drops first) the database `rempart_bench_attack`, loads the group with the real
generator path (keys in a temporary folder), then plays the thief. The keys serve only to score
the guesses; every attack reads what a dump holds: index columns, ciphertext lengths, stays
(establishment, service, dates), IPPs, ids and timestamps. What the thief knows besides: the
public ranking of French family names (Faker's INSEE list, in the source), and the source code,
so he can run the generator himself ("shadow" population, another seed) to learn how names,
dates, lengths and clear columns go together.

Attacks (each one's share of patients whose family name or birth date it gets right, and that
share above chance: what the same guesses would get right on a random patient):
- rank: group rows by a column (each index, each pair of columns sharing a key, the tuple of all
  index columns of a row, an index with a clear column), name the k-th largest group after the
  k-th commonest name (dates: after the k-th commonest birth date of the shadow population);
- excess: the same, only for groups larger than random collisions explain (> C + 4 sqrt C);
- equal slots: rows whose birth-name and usage-name digests are equal (same key) named MARTIN;
- lengths: per (identity, contact) ciphertext length, the name (date) commonest in the shadow
  population at those lengths; dates also per clear profile (establishment kinds, services).
The target: at most 0.1 % of patients recovered above chance by the best attack.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

URL = "postgres://postgres@127.0.0.1:5432/rempart_bench_attack"
TODAY = dt.date(2026, 11, 28)
AEAD_OVERHEAD = 5 + 12 + 16  # Tink prefix, GCM nonce and tag: known from the source
NULL = -1


@dataclass
class Population:
    """Per patient row: what a dump shows (`columns`, `clear`) and the truth (to score only)."""

    columns: dict[str, np.ndarray]  # blind-index columns, NULL = -1
    shared: list[tuple[str, str]]  # pairs of columns under one key (birth and usage slots)
    lengths: np.ndarray  # (identity, contact) ciphertext lengths, as one int64 per row
    profile: np.ndarray  # clear columns: the kinds and services of a patient's stays, one code
    birth: np.ndarray  # truth: folded birth name (code); usage name (code or -1); birth date
    usage: np.ndarray
    date: np.ndarray

    @property
    def size(self) -> int:
        return len(self.birth)


@dataclass
class Knowledge:
    """What the thief brings: the public ranking and a shadow population made with the source."""

    ranked_names: np.ndarray  # codes of the public ranking, commonest first
    ranked_dates: np.ndarray  # shadow population's birth dates, commonest first
    name_prior: dict[int, float]  # shadow frequency of each name: a blind guess's chance
    date_prior: dict[int, float]
    by_length_name: dict[int, int]  # shadow: commonest name at each pair of lengths
    by_length_date: dict[int, int]
    by_profile_date: dict[int, int]
    alphabet: list[tuple[float, int]]  # shadow: cumulative share of names in alphabetical order


@dataclass
class Outcome:
    attack: str
    target: str  # "name" or "date"
    guessed: int = 0
    correct: int = 0
    chance: float = 0.0

    @property
    def above_chance(self) -> float:
        return self.correct - self.chance


@dataclass
class Codes:
    """Names and dates as integers, shared by the real and shadow populations."""

    names: dict[str, int] = field(default_factory=dict)

    def name(self, value: str) -> int:
        return self.names.setdefault(value, len(self.names)) if value else NULL


# --- scoring ------------------------------------------------------------------------------------


def score(
    attack: str, target: str, pop: Population, rows: np.ndarray, guesses: np.ndarray, prior: dict
) -> Outcome:
    if target == "name":
        right = (pop.birth[rows] == guesses) | (pop.usage[rows] == guesses)
    else:
        right = pop.date[rows] == guesses
    chance = float(sum(prior.get(int(g), 0.0) for g in guesses))
    return Outcome(attack, target, len(rows), int(right.sum()), chance)


# --- attacks --------------------------------------------------------------------------------------


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group ids per row (rows with a NULL key: -1) and the size of each group."""
    valid = keys != NULL
    inverse = np.full(len(keys), NULL, dtype=np.int64)
    _, inv, counts = np.unique(keys[valid], return_inverse=True, return_counts=True)
    inverse[valid] = inv
    return inverse, counts


def _combine(*columns: np.ndarray) -> np.ndarray:
    """One key for a tuple of columns (NULL when every part is NULL)."""
    out = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        out = out * 1_000_003 + (column + 1)
    none = np.all(np.stack([c == NULL for c in columns]), axis=0)
    out[none] = NULL
    return out


def rank_attack(
    label: str,
    target: str,
    keys: np.ndarray,
    pop: Population,
    know: Knowledge,
    *,
    extra_counts: np.ndarray | None = None,
    only_excess: bool = False,
) -> Outcome:
    """The k-th largest group gets the k-th commonest name (date)."""
    inverse, counts = _groups(keys)
    if extra_counts is not None:  # occurrences in the other column of the same key
        counts = counts + extra_counts
    ranked = know.ranked_names if target == "name" else know.ranked_dates
    prior = know.name_prior if target == "name" else know.date_prior
    order = np.argsort(-counts, kind="stable")
    if only_excess:
        mean = pop.size / max(len(counts), 1)
        order = order[counts[order] > mean + 4 * np.sqrt(mean)]
    order = order[: len(ranked)]
    guess_of_group = np.full(len(counts), NULL, dtype=np.int64)
    guess_of_group[order] = ranked[: len(order)]
    rows = np.nonzero(inverse != NULL)[0]
    guesses = guess_of_group[inverse[rows]]
    keep = guesses != NULL
    return score(label, target, pop, rows[keep], guesses[keep], prior)


def _other_slot_counts(pop: Population, a: str, b: str) -> np.ndarray:
    """For each group of column a, how often its value appears in column b (same key)."""
    values = pop.columns[a]
    uniques = np.unique(values[values != NULL])
    others = pop.columns[b][pop.columns[b] != NULL]
    found = Counter(others.tolist())
    return np.array([found.get(int(u), 0) for u in uniques], dtype=np.int64)


def groupings(pop: Population) -> Iterable[tuple[str, np.ndarray, np.ndarray | None]]:
    cols = pop.columns
    for name, values in cols.items():
        yield f"rank on {name}", values, None
    for a, b in pop.shared:
        yield f"rank on {a} + {b} (one key)", cols[a], _other_slot_counts(pop, a, b)
    names = list(cols)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if (a, b) not in pop.shared:
                yield f"rank on ({a}, {b})", _combine(cols[a], cols[b]), None
    yield "rank on every index of the row", _combine(*cols.values()), None
    first = next(iter(cols))
    yield (
        f"rank on ({first}, stays' establishments and services)",
        _combine(cols[first], pop.profile),
        None,
    )


def attacks(pop: Population, know: Knowledge) -> list[Outcome]:
    results = []
    for target in ("name", "date"):
        for label, keys, extra in groupings(pop):
            results.append(rank_attack(label, target, keys, pop, know, extra_counts=extra))
            results.append(
                rank_attack(
                    label.replace("rank", "excess"), target, keys, pop, know,
                    extra_counts=extra, only_excess=True,
                )
            )  # fmt: skip
    for a, b in pop.shared:
        rows = np.nonzero((pop.columns[a] == pop.columns[b]) & (pop.columns[a] != NULL))[0]
        guesses = np.full(len(rows), know.ranked_names[0], dtype=np.int64)
        results.append(score(f"equal {a} and {b}", "name", pop, rows, guesses, know.name_prior))
    every = np.arange(pop.size)
    # Rows as the dump lists them (id order: UUIDv7 ids follow insertion): were they inserted in
    # alphabetical order (a legacy file sorted by name), a row's position would give its name.
    bounds = np.array([c for c, _ in know.alphabet])
    by_position = np.array([code for _, code in know.alphabet], dtype=np.int64)
    position = (every + 0.5) / pop.size
    guesses = by_position[np.minimum(np.searchsorted(bounds, position), len(bounds) - 1)]
    results.append(score("row order against the alphabet", "name", pop, every, guesses,
                         know.name_prior))  # fmt: skip
    for target, table, prior in (
        ("name", know.by_length_name, know.name_prior),
        ("date", know.by_length_date, know.date_prior),
    ):
        guesses = np.array([table.get(int(k), NULL) for k in pop.lengths], dtype=np.int64)
        keep = guesses != NULL
        results.append(score("ciphertext lengths", target, pop, every[keep], guesses[keep], prior))
    guesses = np.array([know.by_profile_date.get(int(k), NULL) for k in pop.profile])
    keep = guesses != NULL
    results.append(
        score("stays' establishments and services", "date", pop, every[keep], guesses[keep],
              know.date_prior)
    )  # fmt: skip
    return results


def report(title: str, results: list[Outcome], size: int) -> dict[str, Outcome]:
    print(f"\n{title}: {size:,} patients")
    print(
        f"  {'attack':62} {'target':6} {'guessed':>9} {'right':>8} {'share':>8} {'above chance':>13}"
    )
    best: dict[str, Outcome] = {}
    for r in sorted(results, key=lambda r: (r.target, -r.above_chance)):
        if r.target not in best:
            best[r.target] = r
        if r.guessed == 0:
            continue
        print(
            f"  {r.attack[:62]:62} {r.target:6} {r.guessed:9,} {r.correct:8,} "
            f"{100 * r.correct / size:7.3f}% {100 * r.above_chance / size:12.3f}%"
        )
    for target, r in best.items():
        print(
            f"  best on {target}s: {r.attack} -> {100 * r.correct / size:.3f} % right, "
            f"{100 * r.above_chance / size:.3f} % above chance "
            f"({r.above_chance:,.0f} patients)"
        )
    return best


# --- building the populations ---------------------------------------------------------------------


def knowledge(shadow: Population, codes: Codes) -> Knowledge:
    from rempart.lib.normalise import fold_name
    from rempart.synth.names import FrenchPeople

    public = list(dict.fromkeys(fold_name(n) for n in FrenchPeople.last_names))
    names = Counter(shadow.birth.tolist())
    total = shadow.size
    dates = Counter(shadow.date.tolist())

    def commonest(keys: np.ndarray, values: np.ndarray) -> dict[int, int]:
        table: dict[int, Counter[int]] = defaultdict(Counter)
        for k, v in zip(keys.tolist(), values.tolist(), strict=True):
            table[k][v] += 1
        return {k: c.most_common(1)[0][0] for k, c in table.items()}

    return Knowledge(
        ranked_names=np.array([codes.name(n) for n in public], dtype=np.int64),
        ranked_dates=np.array([d for d, _ in dates.most_common(5000)], dtype=np.int64),
        name_prior={k: v / total for k, v in names.items()},
        date_prior={k: v / total for k, v in dates.items()},
        by_length_name=commonest(shadow.lengths, shadow.birth),
        by_length_date=commonest(shadow.lengths, shadow.date),
        by_profile_date=commonest(shadow.profile, shadow.date),
        alphabet=_alphabet(names, codes, total),
    )


def _alphabet(names: Counter[int], codes: Codes, total: int) -> list[tuple[float, int]]:
    spelled = {code: name for name, code in codes.names.items()}
    cumulative, out = 0.0, []
    for code in sorted(names, key=lambda c: spelled[c]):
        cumulative += names[code] / total
        out.append((cumulative, code))
    return out


def _record_lengths(values: list[dict], patient_cls: type) -> np.ndarray:
    """Ciphertext lengths a dump shows, computed the way the source says (the thief's way)."""
    identity_field = patient_cls._meta.get_field("identity")
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        p = patient_cls(**v)
        ident = len(identity_field.encode(p.identity)) + AEAD_OVERHEAD
        contact = len(identity_field.encode(p.contact)) + AEAD_OVERHEAD if p.contact else 0
        out[i] = ident * 10_000 + contact
    return out


def population_from_values(
    values: list[dict], profiles: list[str], codes: Codes, columns: dict[str, np.ndarray],
    shared: list[tuple[str, str]], lengths: np.ndarray | None = None,
) -> Population:  # fmt: skip
    from rempart.lib.normalise import fold_name
    from rempart.patients.models import Patient

    profile_codes: dict[str, int] = {}
    return Population(
        columns=columns,
        shared=shared,
        lengths=_record_lengths(values, Patient) if lengths is None else lengths,
        profile=np.array([profile_codes.setdefault(p, len(profile_codes)) for p in profiles]),
        birth=np.array([codes.name(fold_name(v["birth_name"] or "")) for v in values]),
        usage=np.array([codes.name(fold_name(v["usage_name"] or "")) for v in values]),
        date=np.array([v["birth_date"].toordinal() for v in values], dtype=np.int64),
    )


def first_design_columns(values: list[dict]) -> dict[str, np.ndarray]:
    """The blind indexes of the first design, under a fresh key (as that schema stored them)."""
    from rempart.lib.normalise import fold_name
    from rempart.lib.phonetic import phonetic_code
    from rempart.patients import indexes as ix
    from rempart.vault import crypto

    indexer = crypto.BlindIndexer(crypto.new_keyset(crypto.INDEX_CATEGORY))

    def column(index: str, bits: int, normalised: list[str | None]) -> np.ndarray:
        return np.array(
            [NULL if d is None else d for d in indexer.digests(index, normalised, bits)]
        )

    def identity(v: dict) -> str | None:
        name, given = fold_name(v["birth_name"] or ""), fold_name(v["first_given_name"] or "")
        return f"{name}|{given}|{v['birth_date'].isoformat()}" if name and given else None

    return {
        "family_name_birth": column("family_name", 10, [fold_name(v["birth_name"] or "") or None for v in values]),
        "family_name_usage": column("family_name", 10, [fold_name(v["usage_name"] or "") or None for v in values]),
        "phonetic_birth": column("family_phonetic", 10, [phonetic_code(v["birth_name"] or "") or None for v in values]),
        "phonetic_usage": column("family_phonetic", 10, [phonetic_code(v["usage_name"] or "") or None for v in values]),
        "birth_date": column("birth_date", 12, [v["birth_date"].isoformat() for v in values]),
        "nir": column("nir", 18, [ix.nir_key(v["nir"]) if v["nir"] else None for v in values]),
        "email": column("email", 18, [ix.email_key(v["email"]) if v["email"] else None for v in values]),
        "identity": column("identity", 24, [identity(v) for v in values]),
    }  # fmt: skip


FIRST_DESIGN_SHARED = [
    ("family_name_birth", "family_name_usage"), ("phonetic_birth", "phonetic_usage"),
]  # fmt: skip


def current_design_columns(values: list[dict]) -> dict[str, np.ndarray]:
    """What the blind-index fields of the model store for these values (the same code path as
    the bulk loader; used for the shadow population and by the test suite)."""
    from rempart.patients.models import Patient
    from rempart.vault.fields import BlindIndexField

    out = {}
    for f in Patient._meta.concrete_fields:
        if isinstance(f, BlindIndexField):
            digests = f.digest_column(*[[v[s] for v in values] for s in f.sources])
            out[f.column] = np.array([NULL if d is None else d for d in digests], dtype=np.int64)
    return out


def current_shared() -> list[tuple[str, str]]:
    from rempart.patients.models import Patient
    from rempart.vault.fields import BlindIndexField

    by_key: dict[str, list[str]] = defaultdict(list)
    for f in Patient._meta.concrete_fields:
        if isinstance(f, BlindIndexField):
            by_key[f.index].append(f.column)
    return [(cols[0], cols[1]) for cols in by_key.values() if len(cols) == 2]


def profiles_of(chunk_stays: dict, ids: list, kinds: dict) -> list[str]:
    return ["|".join(sorted(kinds.get(s, "?") for s in chunk_stays.get(i, ()))) for i in ids]


def _simulate_chunk(task: tuple) -> tuple[list[dict], list[str], np.ndarray]:
    from rempart.patients.models import Patient
    from rempart.synth.population import make_chunk

    directory, index = task
    kinds = {s.id: s.code for s in directory.services}
    chunk = make_chunk(directory, index)
    stays_of: dict = defaultdict(list)
    for s in chunk.stays:
        stays_of[s.patient_id].append(s.service_id)
    ids = [p.id for p in chunk.patients]
    values = [p.data.as_model_values() for p in chunk.patients]
    return values, profiles_of(stays_of, ids, kinds), _record_lengths(values, Patient)


def simulated(patients: int, seed: int) -> tuple[list[dict], list[str], np.ndarray]:
    """A group made in memory by the generator (the thief's shadow, or the test's group): each
    patient's values, stays' services and record lengths; chunks made in 2 processes."""
    import multiprocessing

    from rempart.synth.population import build_directory

    directory = build_directory(seed=seed, patients=patients, today=TODAY, clinics=12,
                                health_centres=2, nursing_homes=3)  # fmt: skip
    tasks = [(directory, i) for i in range(directory.chunks)]
    if len(tasks) > 1:
        with multiprocessing.get_context("fork").Pool(2) as pool:
            parts = pool.map(_simulate_chunk, tasks)
    else:
        parts = [_simulate_chunk(t) for t in tasks]
    values = [v for part in parts for v in part[0]]
    profiles = [p for part in parts for p in part[1]]
    return values, profiles, np.concatenate([part[2] for part in parts])


# --- the run --------------------------------------------------------------------------------------


def connect(data_dir: str) -> None:
    os.environ.update(
        REMPART_ENV="test", REMPART_DATA_DIR=data_dir, DATABASE_URL=URL,
        DJANGO_SETTINGS_MODULE="rempart.settings",
    )  # fmt: skip
    import django

    django.setup()


def setup(patients: int, seed: int) -> None:
    import psycopg

    with psycopg.connect(URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS rempart_bench_attack WITH (FORCE)")
        conn.execute("CREATE DATABASE rempart_bench_attack")
    data_dir = tempfile.mkdtemp(prefix="rempart-attack-")
    print(f"keys in {data_dir} (--reuse {data_dir} attacks this group again)")
    connect(data_dir)
    from django.core.management import call_command

    from rempart.vault import keystore

    call_command("migrate", verbosity=0)
    keystore.init_keys(create_master=True)
    started = time.perf_counter()
    call_command("generate", patients=patients, seed=seed, establishments=17, today=TODAY,
                 workers=2, verbosity=0)  # fmt: skip
    print(f"group of {patients:,} generated and loaded in {time.perf_counter() - started:.0f} s")


def dump(codes: Codes) -> tuple[Population, list[dict]]:
    """Read the database as a thief's dump would hold it; decrypt only to score."""
    from django.db import connection

    from rempart.patients.models import Patient

    index_columns = list(current_design_columns([]))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.patient_id, string_agg(v.code, '|' ORDER BY v.code) "
            "FROM care_stay s JOIN directory_service v ON v.id = s.service_id "
            "GROUP BY s.patient_id"
        )
        profile = dict(cursor.fetchall())
        cursor.execute(
            f"SELECT id, identity, contact, octet_length(identity), "
            f"coalesce(octet_length(contact), 0), {', '.join(index_columns)} "
            "FROM patients_patient ORDER BY id"
        )
        rows = cursor.fetchall()
    identity_field = Patient._meta.get_field("identity")
    contact_field = Patient._meta.get_field("contact")
    values = []
    for row in rows:
        p = Patient(id=row[0])
        p.identity = identity_field.open_value(row[0], bytes(row[1]))
        if row[2] is not None:
            p.contact = contact_field.open_value(row[0], bytes(row[2]))
        values.append({a: getattr(p, a) for a in ("birth_name", "usage_name", "first_given_name",
                                                  "birth_date", "nir", "email")})  # fmt: skip
    stored = {
        c: np.array([NULL if r[5 + i] is None else r[5 + i] for r in rows], dtype=np.int64)
        for i, c in enumerate(index_columns)
    }
    lengths = np.array([r[3] * 10_000 + r[4] for r in rows], dtype=np.int64)
    profiles = [profile.get(r[0], "") for r in rows]
    return (
        population_from_values(values, profiles, codes, stored, current_shared(), lengths),
        values,
    )


def print_collisions(pop: Population, codes: Codes) -> None:
    """How many other patients share a row's value, on average (R x sum of p^2): what a bucket's
    frequency signal is made of, against its random load C."""
    from rempart.lib.phonetic import phonetic_code

    names = {code: name for name, code in codes.names.items()}
    sounds: dict[str, int] = {}
    sound = np.array([sounds.setdefault(phonetic_code(names[c]) or names[c], len(sounds))
                      for c in pop.birth.tolist()])  # fmt: skip

    def shared(keys: np.ndarray) -> float:
        _, counts = np.unique(keys, return_counts=True)
        return float((counts * (counts - 1)).sum() / pop.size)

    print("\nother patients sharing a row's value (mean; the signal a bucket could carry)")
    for label, keys in (
        ("family name", pop.birth),
        ("phonetic code", sound),
        ("birth date", pop.date),
        ("(family name, birth date)", _combine(pop.birth, pop.date)),
        ("(phonetic code, birth date): the indexed input", _combine(sound, pop.date)),
    ):
        print(f"  {label:48} {shared(keys):12.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=760_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--reuse", metavar="DATA_DIR",
        help="attack the group a previous run loaded (its keys folder, printed by that run)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.reuse:
        connect(args.reuse)
    else:
        setup(args.patients, args.seed)
    codes = Codes()
    started = time.perf_counter()
    real, values = dump(codes)
    print(f"dump read and scored truth decrypted in {time.perf_counter() - started:.0f} s")

    started = time.perf_counter()
    shadow_values, shadow_profiles, shadow_lengths = simulated(args.patients, args.seed + 1000)
    shadow_now = population_from_values(
        shadow_values, shadow_profiles, codes, {}, [], shadow_lengths
    )
    know = knowledge(shadow_now, codes)
    print(f"shadow population made from the source in {time.perf_counter() - started:.0f} s")

    print_collisions(real, codes)
    before = Population(
        columns=first_design_columns(values), shared=FIRST_DESIGN_SHARED, lengths=real.lengths,
        profile=real.profile, birth=real.birth, usage=real.usage, date=real.date,
    )  # fmt: skip
    started = time.perf_counter()
    best_before = report("before: the first design's indexes", attacks(before, know), real.size)
    best_after = report("after: the database as stored", attacks(real, know), real.size)
    print(f"\nattacks played in {time.perf_counter() - started:.0f} s")
    print("\nsummary (best attack, share of patients recovered above chance; target <= 0.1 %)")
    for target, label in (("name", "family names"), ("date", "birth dates ")):
        b, a = best_before[target], best_after[target]
        print(
            f"  {label}   before {100 * b.above_chance / real.size:6.3f} %   "
            f"after {100 * a.above_chance / real.size:6.3f} %"
        )


if __name__ == "__main__":
    main()
