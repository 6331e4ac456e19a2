"""Engine speed benchmark: prediction latency, incremental cost, embedding cache.

Measured in one run, ratios printed next to their targets:

1. ``predict_success`` median latency vs a bare scikit-learn ``predict_proba``
   on one ready-made feature row of the same fitted pipeline (target <= 2x).
2. ``partial_train`` cost per example with 100,000 runs stored vs 1,000
   (target <= 1.5x), and vs one full ``train()`` at 100,000 (target: the
   incremental update of a batch at least 100x cheaper than the full train).
   Batches of 1 and of 32 ``pathway:new`` payloads of freshly logged runs.
   Periodic saves after partial updates wait 30 s, so none falls in the
   timed updates; the cost of one ``save()`` is printed separately. The two sizes take
   turns over several rounds and the medians are compared (the machine may be
   shared).
3. A second ``train()`` on unchanged data calls the embedder zero times.

Data: ``bench/quality.py``'s generator (400 pathways), filled with
``PathwayDB.log_many``. Run:
``.venv/bin/python bench/engine_speed.py [--big 100000] [--models logreg,nn,rf]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.quality import generate  # noqa: E402
from menace.learning_engine import LearningEngine  # noqa: E402
from menace.menace_memory_manager import MenaceMemoryManager  # noqa: E402
from menace.neuroplasticity import PathwayDB  # noqa: E402

PAYLOAD_KEYS = ("actions", "exec_time", "roi", "outcome", "label", "prior_frequency",
                "prior_myelination", "pathway_id", "ts")


class CountingEmbedder:
    """Wraps the real embedder and counts the texts it is asked to encode."""

    def __init__(self, inner):
        self.inner, self.name, self.dim, self.texts = inner, inner.name, inner.dim, 0

    def encode(self, texts):
        self.texts += len(texts)
        return self.inner.encode(texts)


#: Runs generated but not logged yet, by store.
SPARE: dict[int, list] = {}


def fill(folder: Path, n_runs: int, embedder: str, spare: int) -> tuple[PathwayDB, MenaceMemoryManager, float]:
    folder.mkdir(parents=True, exist_ok=True)
    pdb = PathwayDB(folder / "pathways.db")
    mm = MenaceMemoryManager(folder / "mem.db", embedder=embedder)
    mm.embedder = CountingEmbedder(mm.embedder)
    records, _ = generate(n_runs + spare, seed=1)
    start = time.perf_counter()
    for i in range(0, n_runs, 20_000):
        pdb.log_many(records[i : min(i + 20_000, n_runs)])
    SPARE[id(pdb)] = records[n_runs:]  # runs logged later, for the incremental updates
    return pdb, mm, time.perf_counter() - start


def new_payloads(pdb: PathwayDB, n: int) -> list[dict]:
    """Log ``n`` more runs and return their pathway:new payloads."""
    last = pdb.count_runs()
    batch, SPARE[id(pdb)] = SPARE[id(pdb)][:n], SPARE[id(pdb)][n:]
    pdb.log_many(batch)
    return [{"run_id": r["id"], **{k: r[k] for k in PAYLOAD_KEYS}} for r in pdb.runs(since_id=last)]


def partial_costs(engines: dict, stores: dict, batch: int, calls: int, rounds: int) -> dict:
    """Median seconds per example of ``partial_train`` for each store size.

    The sizes take turns, round after round, so load from other processes
    hits both alike; each round times ``calls`` updates of ``batch`` fresh runs.
    """
    per_round: dict[int, list[float]] = {n: [] for n in engines}
    for n, engine in engines.items():  # warm-up: first copy, first save
        engine.partial_train(new_payloads(stores[n][0], batch))
    for _ in range(rounds):
        for n, engine in engines.items():
            payloads = new_payloads(stores[n][0], batch * calls)
            start = time.perf_counter()
            for i in range(0, len(payloads), batch):
                engine.partial_train(payloads[i : i + batch])
            per_round[n].append((time.perf_counter() - start) / len(payloads))
    return {n: statistics.median(times) for n, times in per_round.items()}


def predict_latency(engine: LearningEngine, pdb: PathwayDB, calls: int = 3000) -> tuple[float, float]:
    runs = pdb.runs(limit=200)
    probes = [(r["prior_frequency"], r["exec_time"], r["roi"], r["prior_myelination"], r["actions"])
              for r in runs]
    pipeline = engine.live_model.estimator
    rows = [engine.features_of(np.array([p[:4]]), [p[4]]) for p in probes]
    for p, row in zip(probes, rows, strict=True):  # warm both paths and the embedding cache
        engine.predict_success(*p)
        pipeline.predict_proba(row)
    ours, bare = [], []
    for i in range(calls):
        p, row = probes[i % len(probes)], rows[i % len(rows)]
        t0 = time.perf_counter_ns()
        engine.predict_success(*p)
        t1 = time.perf_counter_ns()
        pipeline.predict_proba(row)
        t2 = time.perf_counter_ns()
        ours.append(t1 - t0)
        bare.append(t2 - t1)
    return statistics.median(ours) / 1e3, statistics.median(bare) / 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--models", default="logreg")
    parser.add_argument("--embedder", choices=["hashing", "minilm"], default="hashing")
    parser.add_argument("--calls", type=int, default=25, help="partial_train calls per round")
    parser.add_argument("--rounds", type=int, default=9, help="rounds, sizes taking turns")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        stores = {}
        for n in (args.small, args.big):
            spare = len(args.models.split(",")) * (2 + args.rounds * args.calls * 33 + 33)
            pdb, mm, seconds = fill(Path(tmp) / str(n), n, args.embedder, spare)
            stores[n] = (pdb, mm)
            print(f"- logged {n} runs with log_many in {seconds:.1f}s")
        for model in args.models.split(","):
            print(f"\n**model {model}**, embedder {args.embedder}:\n")
            engines, train_seconds = {}, {}
            for n, (pdb, mm) in stores.items():
                engine = LearningEngine(pdb, mm, model=model, name=f"{model}-{n}")
                before = mm.embedder.texts
                start = time.perf_counter()
                assert engine.train()
                train_seconds[n] = time.perf_counter() - start
                first_texts = mm.embedder.texts - before
                start = time.perf_counter()
                assert engine.train()
                second = time.perf_counter() - start
                print(f"- train() at {n} runs: {train_seconds[n]:.2f}s (embedded {first_texts} texts); "
                      f"second train() {second:.2f}s, embedded {mm.embedder.texts - before - first_texts} "
                      "new texts (target 0)")
                engines[n] = engine
            saves = {}
            for n, engine in engines.items():
                start = time.perf_counter()
                engine.save()
                saves[n] = time.perf_counter() - start
            print(f"- save() {saves[args.small] * 1e3:.0f} ms at {args.small} runs, "
                  f"{saves[args.big] * 1e3:.0f} ms at {args.big} (partial updates save at most "
                  "every 30 s, so none falls inside the update timings below)")
            ours, bare = predict_latency(engines[args.small], stores[args.small][0])
            print(f"- predict_success median {ours:.1f} us, bare predict_proba {bare:.1f} us, "
                  f"ratio {ours / bare:.2f}x (target <= 2)")
            for batch in (1, 32):
                cost = partial_costs(engines, stores, batch, args.calls, args.rounds)
                small, big = cost[args.small], cost[args.big]
                print(f"- partial_train batch={batch}: {small * 1e3:.3f} ms/example at {args.small} runs, "
                      f"{big * 1e3:.3f} ms/example at {args.big}: ratio {big / small:.2f}x "
                      f"(target <= 1.5); full train() at {args.big} took "
                      f"{train_seconds[args.big] / (big * batch):.0f}x one update of {batch} "
                      f"and {train_seconds[args.big] / big:.0f}x the cost per example (target >= 100)")
        for pdb, mm in stores.values():
            pdb.close()
            mm.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
