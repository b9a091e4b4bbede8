"""The database thief looking for canaries, at group scale: plant canaries in the whole group
(timed, with the tables rewritten in id order, and without), then play the queries of
tests/test_canary_attack.py (clear columns, ids, copies) on the dump and a logistic regression over all of them (trained on
half the canaries, as if they had leaked, scored on the other half). Prints the area under the
ROC curve of each (0.5 = chance; the first version's canaries: 1.0 on "no stay" and on "last IPP
numbers").

Usage: .venv/bin/python bench/canary_attack.py [--patients N] [--per-establishment K]
       [--reuse DATA_DIR]
Loads the group into `rempart_bench_attack` (as bench/index_attack.py does; --reuse attacks a
group loaded before, whose keys folder that run printed). Planting adds canaries each run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.index_attack import connect, setup


def logistic_auc(features: np.ndarray, positive: np.ndarray, seed: int = 7) -> float:
    """Fit a logistic regression on half the canaries and an equal share of the others, score
    the held-out half: the best a thief combining every column linearly does."""
    from tests.test_canary_attack import _auc

    rng = np.random.default_rng(seed)
    std = features.std(axis=0)
    z = (features - features.mean(axis=0)) / np.where(std > 0, std, 1)
    z = np.hstack([z, np.ones((len(z), 1))])
    train = rng.random(len(z)) < 0.5
    x, y = z[train], positive[train].astype(float)
    weight = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    beta = np.zeros(z.shape[1])
    for _ in range(500):  # gradient descent on the weighted log-loss
        p = 1 / (1 + np.exp(-(x @ beta)))
        beta -= 0.5 * (x.T @ (weight * (p - y))) / len(y)
    return _auc(z[~train] @ beta, positive[~train])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=760_000)
    parser.add_argument("--per-establishment", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reuse", metavar="DATA_DIR")
    args = parser.parse_args()
    if args.reuse:
        connect(args.reuse)
    else:
        setup(args.patients, args.seed)
    from django.db import connection

    from rempart.access.canaries import canaries_plant
    from rempart.audit.context import Actor
    from tests.test_canary_attack import FEATURES_SQL, ID_NAMES, NAMES, _auc, id_features

    actor = Actor.system("bench canaries")
    started = time.perf_counter()
    planted = canaries_plant(actor=actor, per_establishment=3, reorder=False)
    plain = time.perf_counter() - started
    started = time.perf_counter()
    planted += canaries_plant(actor=actor, per_establishment=args.per_establishment - 3)
    reordered = time.perf_counter() - started
    canaries = {pid for p in planted for pid in p.patient_ids}
    print(f"planting 3 per establishment without rewriting the tables: {plain:.1f} s")
    print(f"planting {args.per_establishment - 3} per establishment, tables rewritten in id "
          f"order (CLUSTER): {reordered:.1f} s")  # fmt: skip
    per_place: dict[object, int] = {}
    for p in planted:
        per_place[p.establishment_id] = per_place.get(p.establishment_id, 0) + len(p.patient_ids)
    print(f"{len(canaries)} canaries; per establishment: {sorted(per_place.values())}")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(FEATURES_SQL)
        rows = cursor.fetchall()
        features = np.array([[float(v or 0) for v in r[1:]] for r in rows])
        features = np.hstack([features, id_features(cursor, [r[0] for r in rows])])
    print(f"{len(rows):,} patients read from the dump in {time.perf_counter() - started:.0f} s")
    names = NAMES + ID_NAMES
    positive = np.array([r[0] in canaries for r in rows])
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    sigma = ((n_pos + n_neg + 1) / (12 * n_pos * n_neg)) ** 0.5
    print(f"AUC per query ({n_pos} canaries among {n_pos + n_neg:,}; chance 0.5 +/- {sigma:.3f}):")
    aucs = {name: _auc(features[:, k], positive) for k, name in enumerate(names)}
    for name, auc in sorted(aucs.items(), key=lambda kv: -abs(kv[1] - 0.5)):
        print(f"  {name:50s} {auc:.3f}")
    combined = logistic_auc(features, positive)
    print(f"logistic regression over all {len(names)} columns: {combined:.3f}")


if __name__ == "__main__":
    main()
