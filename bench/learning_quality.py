"""Live learning quality: what test-then-train scoring costs, and how good the online model is.

Three measurements, all in one run, on ``bench/quality.py``'s stationary
generator (success depends on the action text, ROI and execution time):

1. **Cost.** ``partial_train`` per example with test-then-train scoring and
   drift detection on (the default) against off (``score_updates=False``),
   two engines on the same store taking turns. Target: on <= 1.2x off.
2. **Against river.** A 3,000-run stream, test-then-train: Menace's default
   model (``logreg``, micro-batches of ``--batch`` runs as the coordinator
   feeds it) and river's ``LogisticRegression`` behind river's
   ``StandardScaler``, fed the same feature rows (``LearningEngine.features_of``)
   one run at a time with ``predict_proba_one`` then ``learn_one``.
   Prequential accuracy over the last 1,000 runs, and each one's cost per
   example (river's excludes building the rows). Target: Menace >= river.
3. **Agreement.** On the same stationary stream (``--agree-runs`` runs),
   the prequential accuracy over the last window against ``evaluate()``'s
   holdout accuracy. Target: within 0.03.

    .venv/bin/python bench/learning_quality.py [--batch 64] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quality import generate  # noqa: E402

from menace.learning_engine import LearningEngine  # noqa: E402
from menace.menace_memory_manager import MenaceMemoryManager  # noqa: E402
from menace.neuroplasticity import PathwayDB  # noqa: E402
from menace.run_watcher import run_payload  # noqa: E402

TARGET_COST = 1.2
TARGET_AGREEMENT = 0.03


def payloads_of(pdb: PathwayDB) -> list[dict]:
    return [run_payload(r) for r in pdb.runs()]


def cost(pdb: PathwayDB, mm: MenaceMemoryManager, tmp: Path, batch: int, rounds: int) -> dict:
    payloads = payloads_of(pdb)
    warm, rest = payloads[:1000], payloads[1000:]
    engines = {
        "on": LearningEngine(pdb, mm, model_dir=tmp / "on", save_every=0),
        "off": LearningEngine(pdb, mm, model_dir=tmp / "off", save_every=0, score_updates=False),
    }
    for engine in engines.values():
        engine.partial_train(warm[:batch])  # first model, first copy
    times: dict[str, list[float]] = {name: [] for name in engines}
    per_round = len(rest) // rounds
    for r in range(rounds):
        chunk = rest[r * per_round : (r + 1) * per_round]
        for name, engine in (engines.items() if r % 2 == 0 else reversed(engines.items())):
            start = time.perf_counter()
            for i in range(0, len(chunk), batch):
                engine.partial_train(chunk[i : i + batch])
            times[name].append((time.perf_counter() - start) / len(chunk))
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    return {"on_us": on * 1e6, "off_us": off * 1e6, "ratio": on / off}


def against_river(pdb: PathwayDB, mm: MenaceMemoryManager, tmp: Path, batch: int, n: int = 3000) -> dict:
    from river import linear_model, preprocessing

    payloads = payloads_of(pdb)[:n]
    engine = LearningEngine(pdb, mm, model_dir=tmp / "river-cmp", save_every=0, prequential_window=1000)
    # Menace: micro-batches, scored before each update (inside partial_train).
    start = time.perf_counter()
    for i in range(0, n, batch):
        engine.partial_train(payloads[i : i + batch])
    menace_s = time.perf_counter() - start
    menace_acc = engine.prequential_snapshot()["accuracy"]  # the last 1,000 runs
    # river: the same rows, one run at a time.
    numbers = np.array([[p["prior_frequency"], p["exec_time"], p["roi"], p["prior_myelination"]] for p in payloads])
    rows = engine.features_of(numbers, [p["actions"] for p in payloads])
    labels = [p["label"] for p in payloads]
    dicts = [dict(enumerate(row.tolist())) for row in rows]
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    right = []
    start = time.perf_counter()
    for x, y in zip(dicts, labels, strict=True):
        p = model.predict_proba_one(x).get(True, 0.5)
        right.append((p >= 0.5) == bool(y))
        model.learn_one(x, bool(y))
    river_s = time.perf_counter() - start
    return {
        "menace_acc": float(menace_acc), "river_acc": float(np.mean(right[-1000:])),
        "menace_us": menace_s / n * 1e6, "river_us": river_s / n * 1e6,
        "majority": float(max(np.mean(labels[-1000:]), 1 - np.mean(labels[-1000:]))),
    }


def agreement(tmp: Path, embedder: str, batch: int, n: int) -> dict:
    pdb = PathwayDB(tmp / "agree.db")
    mm = MenaceMemoryManager(tmp / "agree-mem.db", embedder=embedder)
    records, _ = generate(n, seed=5)
    pdb.log_many(records)
    engine = LearningEngine(pdb, mm, model_dir=tmp / "agree", save_every=0, prequential_window=1000)
    payloads = payloads_of(pdb)
    for i in range(0, len(payloads), batch):
        engine.partial_train(payloads[i : i + batch])
    prequential = engine.prequential_snapshot()["accuracy"]
    holdout = engine.evaluate(cv=5, test_split=0.2)["holdout_score"]
    pdb.close()
    mm.close()
    return {"prequential": prequential, "holdout": holdout, "gap": abs(prequential - holdout)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=12_000, help="runs in the store for the cost rounds")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--agree-runs", type=int, default=20_000)
    parser.add_argument("--embedder", default="hashing", choices=["hashing", "minilm"])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="menace-lq-") as name:
        tmp = Path(name)
        pdb = PathwayDB(tmp / "pathways.db")
        mm = MenaceMemoryManager(tmp / "mem.db", embedder=args.embedder)
        records, _ = generate(args.runs, seed=3)
        pdb.log_many(records)
        c = cost(pdb, mm, tmp, args.batch, args.rounds)
        r = against_river(pdb, mm, tmp, args.batch)
        pdb.close()
        mm.close()
        a = agreement(tmp, args.embedder, args.batch, args.agree_runs)
    print(f"embedder={args.embedder} batch={args.batch}")
    print("| measurement | figure | baseline (same run) | target | met |")
    print("|---|---|---|---|---|")
    print(f"| partial_train per example, scoring on vs off | {c['on_us']:.1f} us vs {c['off_us']:.1f} us: "
          f"{c['ratio']:.2f}x | off | <= {TARGET_COST}x | {'yes' if c['ratio'] <= TARGET_COST else 'no'} |")
    print(f"| prequential accuracy, last 1,000 of 3,000 | Menace logreg {r['menace_acc']:.3f} "
          f"({r['menace_us']:.0f} us/run) | river LogisticRegression {r['river_acc']:.3f} "
          f"({r['river_us']:.0f} us/run); majority {r['majority']:.3f} | >= river | "
          f"{'yes' if r['menace_acc'] >= r['river_acc'] else 'no'} |")
    print(f"| prequential vs holdout accuracy, {args.agree_runs:,} stationary runs | {a['prequential']:.3f} vs "
          f"{a['holdout']:.3f}: gap {a['gap']:.3f} | - | <= {TARGET_AGREEMENT} | "
          f"{'yes' if a['gap'] <= TARGET_AGREEMENT else 'no'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
