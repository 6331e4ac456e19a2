"""Quality benchmark: holdout accuracy and ROC AUC of every model on generated pathway logs.

The data (``generate``): 400 pathways, each a sequence of 2-5 steps drawn from
24 step names; 8 steps are risky (``skip_tests``, ``force_push``, ...: -1.2 on
the log-odds each), 6 are careful (``validate``, ``run_tests``, ...: +0.9
each), the rest neutral. Each run has ``roi ~ Normal(1, 1.5)`` and
``exec_time ~ LogNormal(0, 0.6)`` seconds, and succeeds with probability::

    p = sigmoid(-0.3 + text_logit + 0.8 * roi - 0.5 * exec_time)

Outcomes that are not successes are split between FAILURE and
PARTIAL_SUCCESS (both label 0). Pathways are picked with Zipf-like
popularity, so prior frequency and myelination vary; they carry no signal of
their own beyond what the text already says. Since ``p`` is known for every
run, the best achievable (Bayes) accuracy on the holdout is the mean of
``max(p, 1 - p)`` and the best achievable ROC AUC is the AUC of ``p`` itself.

Every row of the table is measured in the same run on the same split: the
engine's seeded stratified holdout (20 %) and 5-fold CV on the rest, through
``LearningEngine.evaluate``. Baselines: the majority class of the training
part, and each model on the five seed features only (``features="seed"``:
prior frequency, exec time, ROI, prior myelination, mean embedding value).

Run: ``.venv/bin/python bench/quality.py [--runs 6000] [--embedder hashing|minilm]``
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from menace.learning_engine import LearningEngine  # noqa: E402
from menace.menace_memory_manager import MenaceMemoryManager  # noqa: E402
from menace.models.selection import holdout_split, roc_auc  # noqa: E402
from menace.neuroplasticity import Outcome, PathwayDB, PathwayRecord  # noqa: E402

RISKY = ["skip_tests", "force_push", "manual_edit", "hotfix_prod", "scrape_retry",
         "disable_checks", "rush_merge", "ignore_errors"]
CAREFUL = ["validate_input", "run_tests", "backup_db", "code_review", "dry_run", "canary_deploy"]
NEUTRAL = ["fetch_data", "parse_json", "store_rows", "send_email", "build_image",
           "notify_team", "resize_images", "sync_cache", "export_csv", "login"]
STEP_LOGIT = {**{s: -1.2 for s in RISKY}, **{s: 0.9 for s in CAREFUL}, **{s: 0.0 for s in NEUTRAL}}


def generate(n_runs: int, seed: int = 0) -> tuple[list[PathwayRecord], np.ndarray]:
    """Runs and their true success probabilities, in logged order."""
    rng = random.Random(seed)
    steps = list(STEP_LOGIT)
    pathways = sorted({"->".join(rng.sample(steps, rng.randint(2, 5))) for _ in range(420)})[:400]
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(pathways))]
    rng.shuffle(weights)
    records, probs = [], []
    for i in range(n_runs):
        actions = rng.choices(pathways, weights)[0]
        roi = rng.gauss(1.0, 1.5)
        exec_time = rng.lognormvariate(0.0, 0.6)
        logit = -0.3 + sum(STEP_LOGIT[s] for s in actions.split("->")) + 0.8 * roi - 0.5 * exec_time
        p = 1.0 / (1.0 + math.exp(-logit))
        if rng.random() < p:
            outcome = Outcome.SUCCESS
        else:
            outcome = Outcome.FAILURE if rng.random() < 0.7 else Outcome.PARTIAL_SUCCESS
        records.append(PathwayRecord(actions=actions, exec_time=exec_time, roi=roi,
                                     outcome=outcome, ts=1.7e9 + 30.0 * i))
        probs.append(p)
    return records, np.asarray(probs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6000)
    parser.add_argument("--embedder", choices=["hashing", "minilm"], default="hashing")
    parser.add_argument("--models", default="logreg,nn,rf")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--order-runs", type=int, default=6000, help="runs of the order generator (0: skip it)")
    parser.add_argument("--only-order", action="store_true", help="only the order-aware table")
    args = parser.parse_args(argv)
    if args.only_order:
        print_order_table(args)
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        pdb = PathwayDB(Path(tmp) / "pathways.db")
        mm = MenaceMemoryManager(Path(tmp) / "mem.db", embedder=args.embedder)
        records, p_true = generate(args.runs, args.seed)
        pdb.log_many(records)
        y = np.array([1 if r.outcome is Outcome.SUCCESS else 0 for r in records])
        train_idx, test_idx = holdout_split(y, 0.2, args.seed)  # the engine's own split
        majority = int(np.mean(y[train_idx]) >= 0.5)
        rows = [
            ("best achievable (true p)", "-", float(np.mean(np.maximum(p_true, 1 - p_true)[test_idx])),
             roc_auc(y[test_idx], p_true[test_idx]), float("nan"), 0.0),
            ("majority class", "-", float(np.mean(y[test_idx] == majority)), 0.5, float("nan"), 0.0),
        ]
        for features in ("seed", "full"):
            for model in args.models.split(","):
                engine = LearningEngine(pdb, mm, model=model, features=features, seed=args.seed,
                                        model_dir=Path(tmp) / "models")
                start = time.perf_counter()
                result = engine.evaluate(cv=5, test_split=0.2)
                rows.append((model, features, result["holdout_score"], result["holdout_auc"],
                             result["cv_score"], time.perf_counter() - start))
        print(f"runs={args.runs} pathways={pdb.count_pathways()} success_rate={y.mean():.3f} "
              f"embedder={mm.embedder.name} holdout={len(test_idx)} seed={args.seed}")
        print("| model | features | holdout accuracy | holdout ROC AUC | 5-fold CV accuracy | seconds |")
        print("|---|---|---|---|---|---|")
        for name, features, acc, auc, cv, seconds in rows:
            cv_text = "-" if math.isnan(cv) else f"{cv:.3f}"
            print(f"| {name} | {features} | {acc:.3f} | {auc:.3f} | {cv_text} | {seconds:.1f} |")
        pdb.close()
        mm.close()
    if args.order_runs:
        print_order_table(args)
    return 0


def print_order_table(args: argparse.Namespace) -> None:
    rows, n_seen, n_unseen, rate = order_table(args.order_runs, args.embedder, args.models.split(","), args.seed)
    print()
    print(f"order generator: runs={args.order_runs} seen pathways={n_seen} unseen={n_unseen} "
          f"(success rate of the unseen {rate:.3f}) embedder={args.embedder} seed={args.seed}")
    print("| model | features | unseen-pathway accuracy (noiseless truth) | seconds |")
    print("|---|---|---|---|")
    for name, features, acc, seconds in rows:
        print(f"| {name} | {features} | {acc:.3f} | {seconds:.1f} |")


# -- order-aware features: success depends on the order of the steps -----------------------------

#: (guard, risky): a pathway with the risky step fails unless the guard ran before it.
ORDER_RULES = [("run_tests", "deploy"), ("backup_db", "migrate_db"), ("login", "fetch_orders"),
               ("validate_input", "write_rows")]
ORDER_NEUTRAL = ["notify_team", "build_image", "sync_cache", "export_csv", "resize_images"]
ORDER_STEPS = [s for rule in ORDER_RULES for s in rule] + ORDER_NEUTRAL


def order_truth(actions: str) -> int:
    """1 when every risky step present comes after its guard, else 0 (the noiseless outcome)."""
    steps = actions.split("->")
    for guard, risky in ORDER_RULES:
        if risky in steps and (guard not in steps or steps.index(guard) > steps.index(risky)):
            return 0
    return 1


def order_pathways(seed: int, n: int) -> tuple[list[str], list[str]]:
    """``n`` distinct pathways of 3-6 steps, cut into the ones seen in training and unseen ones (20 %).

    Each seen pathway runs about once, so a pathway's history (frequency,
    myelination) says nothing an unseen one lacks: only its steps and their
    order tell success from failure.
    """
    rng = random.Random(seed)
    found: set[str] = set()
    while len(found) < n:
        steps = rng.sample(ORDER_STEPS, rng.randint(3, 6))
        if rng.random() < 0.5:  # make both orders of a guarded pair common
            guard, risky = rng.choice(ORDER_RULES)
            steps = [s for s in steps if s not in (guard, risky)]
            at, later = sorted(rng.sample(range(len(steps) + 2), 2))
            first, second = (guard, risky) if rng.random() < 0.5 else (risky, guard)
            steps.insert(at, first)
            steps.insert(later, second)
        found.add("->".join(steps))
    pathways = sorted(found)
    rng.shuffle(pathways)
    cut = int(len(pathways) * 0.8)
    return pathways[:cut], pathways[cut:]


def order_runs(pathways: list[str], n_runs: int, seed: int, noise: float = 0.1) -> list[PathwayRecord]:
    """Runs of the seen pathways; 10 % of outcomes flipped; the numbers carry no signal."""
    rng = random.Random(seed + 1)
    records = []
    for i in range(n_runs):
        actions = pathways[i % len(pathways)]
        label = order_truth(actions) ^ (rng.random() < noise)
        outcome = Outcome.SUCCESS if label else rng.choice([Outcome.FAILURE, Outcome.PARTIAL_SUCCESS])
        records.append(PathwayRecord(actions=actions, exec_time=rng.lognormvariate(0.0, 0.6),
                                     roi=rng.gauss(1.0, 1.0), outcome=outcome, ts=1.7e9 + 30.0 * i))
    return records


def order_table(n_runs: int, embedder: str, models: list[str], seed: int) -> list[tuple]:
    """Unseen-pathway accuracy against the noiseless truth, with and without the order features."""
    seen, unseen = order_pathways(seed, int(n_runs / 0.8))
    truth = np.array([order_truth(a) for a in unseen])
    rows = [("majority class", "-", float(max(truth.mean(), 1 - truth.mean())), 0.0)]
    with tempfile.TemporaryDirectory() as tmp:
        pdb = PathwayDB(Path(tmp) / "pathways.db")
        mm = MenaceMemoryManager(Path(tmp) / "mem.db", embedder=embedder)
        pdb.log_many(order_runs(seen, n_runs, seed))
        for features in ("embedding", "full"):
            for model in models:
                engine = LearningEngine(pdb, mm, model=model, features=features, seed=seed,
                                        model_dir=Path(tmp) / "models" / features)
                start = time.perf_counter()
                engine.train()
                guesses = np.array([engine.predict_success(0, 1.0, 1.0, 0.0, a) >= 0.5 for a in unseen])
                rows.append((model, features, float(np.mean(guesses == truth)), time.perf_counter() - start))
        pdb.close()
        mm.close()
    return rows, len(seen), len(unseen), float(truth.mean())


if __name__ == "__main__":
    raise SystemExit(main())
