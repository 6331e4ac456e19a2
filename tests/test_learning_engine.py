"""LearningEngine: the learning rules of ARCHITECTURE.md, on real SQLite files in tmp_path.

The generated runs succeed mostly when the action text is one of the GOOD
sequences and the ROI is positive, so a model that learned anything ranks a
good pathway above a bad one.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY
from workloads import BAD, GOOD, make_runs

from menace.features import ORDER_DIM, order_vector
from menace.learning_engine import (
    UNTRAINED_PROBABILITY,
    LearnedRuns,
    LearningEngine,
    TrainingCancelled,
)
from menace.menace_memory_manager import MenaceMemoryManager
from menace.models import available_models, register
from menace.models.base import ModelFamily
from menace.neuroplasticity import Outcome, PathwayDB, PathwayRecord

TABULAR = ["logreg", "nn", "rf"]


@pytest.fixture
def stores(tmp_path):
    pdb = PathwayDB(tmp_path / "pathways.db")
    mm = MenaceMemoryManager(tmp_path / "mem.db", embedder="hashing")
    yield pdb, mm
    pdb.close()
    mm.close()


@pytest.fixture
def filled(stores):
    pdb, mm = stores
    pdb.log_many(make_runs(400))
    return pdb, mm


def failure_payloads(pdb: PathwayDB, actions: str, n: int, t0: float = 2.0e9) -> list[dict]:
    """Log ``n`` failed runs of ``actions`` and return their pathway:new payloads."""
    last = pdb.runs()[-1]["id"] if pdb.count_runs() else 0
    pdb.log_many([PathwayRecord(actions=actions, exec_time=1.0, roi=1.0, outcome=Outcome.FAILURE,
                                ts=t0 + i) for i in range(n)])
    return [payload_of(run) for run in pdb.runs(since_id=last)]


def payload_of(run: dict) -> dict:
    keys = ("actions", "exec_time", "roi", "outcome", "label", "prior_frequency", "prior_myelination")
    return {"run_id": run["id"], "pathway_id": run["pathway_id"], "ts": run["ts"],
            **{k: run[k] for k in keys}}


# -- construction and the untrained engine -----------------------------------------
def test_unknown_model_name_lists_the_valid_ones(stores):
    with pytest.raises(ValueError) as err:
        LearningEngine(*stores, model="svm")
    for name in ("logreg", "nn", "rf"):
        assert name in str(err.value)


def test_the_menu_offers_every_documented_model():
    assert {"logreg", "nn", "rf", "transformer", "bert"} <= set(available_models())


def test_untrained_prediction_is_the_documented_prior(stores):
    engine = LearningEngine(*stores)
    assert not engine.is_trained
    assert engine.train() is False  # empty database: a clear no, not a crash
    assert engine.predict_success(1.0, 1.0, 1.0, 1.0, "actions") == UNTRAINED_PROBABILITY


def test_single_outcome_does_not_train(stores):
    pdb, mm = stores
    pdb.log_many([PathwayRecord(actions="a->b", outcome="SUCCESS", ts=1e9 + i) for i in range(20)])
    engine = LearningEngine(pdb, mm)
    assert engine.train() is False
    assert not engine.is_trained


@pytest.mark.parametrize(
    "args, field",
    [
        ((-1, 1, 1, 1, "a"), "freq"),
        ((1, float("nan"), 1, 1, "a"), "exec_time"),
        ((1, -0.5, 1, 1, "a"), "exec_time"),
        ((1, 1, float("inf"), 1, "a"), "roi"),
        ((1, 1, 1, float("-inf"), "a"), "myelination"),
        ((1, 1, 1, 1, "   "), "actions"),
        ((1, 1, 1, 1, None), "actions"),
        (("x", 1, 1, 1, "a"), "freq"),
    ],
)
def test_predict_rejects_nonsense_naming_the_field(stores, args, field):
    engine = LearningEngine(*stores)
    with pytest.raises(ValueError, match=field):
        engine.predict_success(*args)


def test_constructor_validates_its_arguments(stores, tmp_path):
    with pytest.raises(ValueError, match="persist_path"):
        LearningEngine(*stores, persist_path=tmp_path / "history.txt")
    with pytest.raises(ValueError, match="features"):
        LearningEngine(*stores, features="everything")
    with pytest.raises(ValueError, match="memory_mgr"):
        LearningEngine(stores[0], None)


# -- training and the one feature pipeline ----------------------------------------
def test_train_learns_from_text_and_numbers(filled):
    engine = LearningEngine(*filled)
    assert engine.train() is True
    assert engine.is_trained and engine.n_seen == 400
    good = engine.predict_success(60, 2.0, 2.0, 50.0, GOOD[0])
    bad = engine.predict_success(60, 2.0, 2.0, 50.0, BAD[0])
    assert 0.0 <= bad < good <= 1.0


def test_feature_names_document_the_columns(filled):
    full = LearningEngine(*filled)
    assert full.feature_names[:5] == [
        "prior_frequency", "exec_time", "roi", "prior_myelination", "embedding_mean"]
    dim = filled[1].embedder.dim
    assert len(full.feature_names) == 5 + dim + ORDER_DIM
    assert full.feature_names[5 + dim] == "order_0"
    assert len(LearningEngine(*filled, features="embedding").feature_names) == 5 + dim
    assert len(LearningEngine(*filled, features="seed").feature_names) == 5


def test_order_features_tell_the_order_of_the_steps_apart():
    before, after = order_vector("run_tests->deploy"), order_vector("deploy -> Run_Tests")
    assert before.shape == (ORDER_DIM,) and not np.allclose(before, after)
    assert np.array_equal(order_vector("a->b->c"), order_vector(" a -> b -> c "))
    assert np.abs(before).sum() == 3  # two steps and one ordered pair, each a signed count


def test_prediction_uses_the_training_features_and_scaling(filled):
    pdb, mm = filled
    engine = LearningEngine(pdb, mm)
    engine.train()
    run = pdb.runs(limit=1)[0]
    # The row the model trained on for this run is the row predict_success builds.
    trained_row = engine.features_of(
        np.array([[run["prior_frequency"], run["exec_time"], run["roi"], run["prior_myelination"]]]),
        [run["actions"]])
    prob = engine.predict_success(run["prior_frequency"], run["exec_time"], run["roi"],
                                  run["prior_myelination"], run["actions"])
    pipeline = engine.live_model.estimator
    assert prob == pytest.approx(pipeline.predict_proba(trained_row)[0, 1], abs=1e-12)
    # Skipping the fitted scaler would give another answer: predictions are never raw.
    raw = pipeline.named_steps["model"].predict_proba(trained_row)[0, 1]
    assert abs(raw - prob) > 1e-6
    embedding = mm.embed(run["actions"])
    assert trained_row[0, 4] == pytest.approx(float(embedding.mean()), abs=1e-6)
    assert np.allclose(trained_row[0, 5 : 5 + len(embedding)], embedding, atol=1e-6)
    assert np.array_equal(trained_row[0, 5 + len(embedding) :], order_vector(run["actions"]))


def test_progress_goes_from_zero_to_one(filled):
    seen: list[tuple[float, str]] = []
    LearningEngine(*filled).train(progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert all(isinstance(m, str) and m for _, m in seen)


def test_second_train_embeds_nothing_new(filled):
    pdb, mm = filled
    calls = []
    encode = mm.embedder.encode
    mm.embedder.encode = lambda texts: calls.append(len(texts)) or encode(texts)
    engine = LearningEngine(pdb, mm)
    engine.train()
    first = len(calls)
    engine.train()
    assert first >= 1 and len(calls) == first


# -- evaluation ----------------------------------------------------------------------
@pytest.mark.parametrize("model", ["logreg", "rf"])
def test_evaluate_leaves_predictions_unchanged(filled, model):
    engine = LearningEngine(*filled, model=model)
    engine.train()
    probe = [(60, 2.0, 2.0, 50.0, GOOD[0]), (3, 1.0, -1.0, 0.0, BAD[1])]
    before = [engine.predict_success(*p) for p in probe]
    live = engine.live_model
    engine.evaluate()
    assert engine.live_model is live
    assert [engine.predict_success(*p) for p in probe] == before


def test_evaluate_scores_are_finite_seeded_and_recorded(filled, tmp_path):
    path = tmp_path / "evaluations.jsonl"
    engine = LearningEngine(*filled, persist_path=path)
    first = engine.evaluate(cv=3, test_split=0.25)
    for key in ("cv_score", "holdout_score", "holdout_auc"):
        assert math.isfinite(first[key]) and 0.0 <= first[key] <= 1.0
    assert first["holdout_score"] > 0.7  # the text and ROI carry real signal
    assert first["model"] == "logreg" and first["n_examples"] == 400 and first["ts"] > 0
    assert first["n_holdout"] == 100
    second = engine.evaluate(cv=3, test_split=0.25)
    assert second["cv_scores"] == first["cv_scores"]  # same seed, same splits, same scores
    assert engine.evaluation_history == [first, second]
    assert engine.load_history() == [first, second]
    assert [json.loads(line)["ts"] for line in path.read_text().splitlines()] == [first["ts"], second["ts"]]
    assert REGISTRY.get_sample_value("learning_cv_score", {"engine": "pathways"}) == second["cv_score"]
    assert REGISTRY.get_sample_value("learning_holdout_score", {"engine": "pathways"}) == second["holdout_score"]
    # A new engine on the same file starts with the stored history.
    assert LearningEngine(*filled, persist_path=path).evaluation_history == [first, second]


def test_history_in_sqlite_keeps_order_and_engines_apart(filled, tmp_path):
    path = tmp_path / "history.db"
    a = LearningEngine(*filled, persist_path=path, name="a", model_dir=tmp_path / "ma")
    b = LearningEngine(*filled, persist_path=path, name="b", model_dir=tmp_path / "mb")
    results = [a.evaluate(cv=2), b.evaluate(cv=2), a.evaluate(cv=3)]
    assert a.load_history() == [results[0], results[2]]
    assert b.load_history() == [results[1]]


def test_evaluate_with_too_little_data_says_what_is_missing(stores):
    pdb, mm = stores
    pdb.log_many(make_runs(8))
    engine = LearningEngine(pdb, mm)
    with pytest.raises(ValueError, match="too little data"):
        engine.evaluate()
    with pytest.raises(ValueError, match="cv"):
        engine.evaluate(cv=1)
    with pytest.raises(ValueError, match="test_split"):
        engine.evaluate(test_split=1.0)
    assert engine.evaluation_history == []


# -- incremental updates -------------------------------------------------------------
@pytest.mark.parametrize("model", TABULAR)
def test_partial_train_changes_predictions_for_every_model(filled, model):
    pdb, mm = filled
    engine = LearningEngine(pdb, mm, model=model)
    engine.train()
    before = engine.predict_success(60, 1.0, 1.0, 50.0, GOOD[0])
    payloads = failure_payloads(pdb, GOOD[0], 30)
    assert engine.partial_train(payloads) is True
    assert engine.n_seen == 430
    after = engine.predict_success(60, 1.0, 1.0, 50.0, GOOD[0])
    assert after < before  # thirty failures of a good pathway lower its odds


@pytest.mark.parametrize("model", TABULAR)
def test_partial_train_from_scratch_makes_a_model(stores, model):
    pdb, mm = stores
    pdb.log_many(make_runs(60))
    engine = LearningEngine(pdb, mm, model=model)
    learned = engine.partial_train([payload_of(r) for r in pdb.runs()])
    assert learned is True and engine.is_trained
    assert 0.0 <= engine.predict_success(1, 1, 1, 1, GOOD[1]) <= 1.0


def test_partial_train_takes_records_payloads_and_lists(filled):
    pdb, mm = filled
    engine = LearningEngine(pdb, mm)
    engine.train()
    record = PathwayRecord(actions=GOOD[2], exec_time=1.0, roi=2.0, outcome="FAILURE", ts=3e9)
    assert engine.partial_train(record) is True
    assert engine.partial_train(failure_payloads(pdb, BAD[0], 1)[0]) is True
    assert engine.partial_train([record, record]) is True
    assert engine.n_seen == 404


def test_partial_train_skips_runs_the_full_training_saw(filled):
    pdb, mm = filled
    engine = LearningEngine(pdb, mm)
    engine.train()
    assert engine.partial_train([payload_of(r) for r in pdb.runs(limit=5)]) is False
    assert engine.n_seen == 400


@pytest.mark.parametrize("model", ["logreg", "rf"])
def test_a_run_delivered_again_is_learned_once_also_after_a_restart(filled, model, tmp_path):
    # A replayed journal or a watcher resuming from an older point after a crash
    # delivers runs the saved model already learned; they must not weigh double.
    pdb, mm = filled
    models = tmp_path / "models"
    engine = LearningEngine(pdb, mm, model=model, model_dir=models)
    engine.train()
    first = failure_payloads(pdb, BAD[0], 3)
    assert engine.partial_train(first + first[:1]) is True  # a duplicate inside one batch too
    assert engine.n_seen == 403
    assert engine.partial_train(first) is False
    engine.save()
    restarted = LearningEngine(pdb, mm, model=model, model_dir=models)
    assert restarted.partial_train(first) is False
    assert restarted.n_seen == 403
    later = failure_payloads(pdb, BAD[1], 2, t0=2.1e9)
    assert restarted.partial_train(list(reversed(later)) + first) is True  # out of order: fine
    assert restarted.n_seen == 405
    restarted.train()  # a full training covers them all; the list starts again
    assert len(restarted.learned_runs) == 0
    assert restarted.partial_train(later) is False


def test_learned_runs_keep_sorted_merged_ranges():
    runs = LearnedRuns()
    for run_id in (5, 7, 6, 1, 3, 2, 10, 3):
        runs.add(run_id)
    assert runs.ranges() == [[1, 3], [5, 7], [10, 10]]
    assert len(runs) == 7
    assert [r for r in range(12) if r in runs] == [1, 2, 3, 5, 6, 7, 10]
    assert LearnedRuns(runs.ranges()).ranges() == runs.ranges()
    for damaged in ([[3, 1]], [[1, 2], [3, 4]], [[5, 6], [1, 2]], [["1", 2]], [[1.5, 2]]):
        with pytest.raises(ValueError):
            LearnedRuns(damaged)


def test_a_damaged_list_of_learned_runs_is_ignored_with_a_warning(filled, tmp_path, caplog):
    pdb, mm = filled
    engine = LearningEngine(pdb, mm, model_dir=tmp_path / "models")
    engine.train()
    engine.partial_train(failure_payloads(pdb, BAD[0], 2))
    path = engine.save()
    family = engine.model_family
    estimator, meta = family.load(path)
    family.save(estimator, {**meta, "learned_runs": [[9, 1]]}, path)  # damaged on disk
    restarted = LearningEngine(pdb, mm, model_dir=tmp_path / "models")
    assert restarted.is_trained and len(restarted.learned_runs) == 0
    assert "ignoring the saved list of learned runs" in caplog.text


def test_partial_train_rejects_a_bad_item_and_learns_nothing(filled):
    pdb, mm = filled
    engine = LearningEngine(pdb, mm)
    engine.train()
    good = failure_payloads(pdb, GOOD[0], 1)[0]
    before = engine.predict_success(60, 1.0, 1.0, 50.0, GOOD[0])
    with pytest.raises(ValueError, match=r"batch\[1\]\.exec_time"):
        engine.partial_train([good, dict(good, exec_time=-1)])
    with pytest.raises(ValueError, match=r"batch\[1\].*prior_myelination"):
        engine.partial_train([good, {k: v for k, v in good.items() if k != "prior_myelination"}])
    with pytest.raises(ValueError, match="outcome"):
        engine.partial_train(dict(good, outcome="MAYBE"))
    with pytest.raises(ValueError, match="PathwayRecord"):
        engine.partial_train("a->b")
    assert engine.n_seen == 400
    assert engine.predict_success(60, 1.0, 1.0, 50.0, GOOD[0]) == before


@pytest.mark.parametrize("model", TABULAR)
def test_partial_train_never_reads_the_whole_database(filled, model):
    pdb, mm = filled
    engine = LearningEngine(pdb, mm, model=model)
    engine.train()
    payloads = failure_payloads(pdb, GOOD[0], 5)
    reads = []
    runs = pdb.runs
    pdb.runs = lambda *a, **k: reads.append(k.get("limit")) or runs(*a, **k)
    restarted = LearningEngine(pdb, mm, model=model)  # an empty replay window
    assert restarted.partial_train(payloads) is True
    assert all(limit is not None and limit <= 2000 for limit in reads)
    assert engine.partial_train(payloads) is True


# -- cancel, threads -----------------------------------------------------------------
def test_cancel_leaves_the_live_model_unchanged(filled):
    pdb, mm = filled
    engine = LearningEngine(pdb, mm)
    engine.train()
    live, before = engine.live_model, engine.predict_success(60, 1.0, 1.0, 50.0, GOOD[0])
    pdb.log_many(make_runs(200, seed=5, t0=2e9))
    cancel = threading.Event()

    def progress(fraction, message):
        if fraction >= 0.3:
            cancel.set()  # cancelled mid-way, after the runs were read

    with pytest.raises(TrainingCancelled):
        engine.train(progress=progress, cancel=cancel)
    with pytest.raises(TrainingCancelled):
        engine.auto_train(["logreg", "rf"], progress=progress, cancel=cancel)
    with pytest.raises(TrainingCancelled):
        engine.evaluate(cancel=cancel)
    assert engine.live_model is live and engine.n_seen == 400
    assert engine.predict_success(60, 1.0, 1.0, 50.0, GOOD[0]) == before


def test_predictions_from_another_thread_while_training(filled):
    pdb, mm = filled
    engine = LearningEngine(pdb, mm)
    engine.train()
    stop, errors, answers = threading.Event(), [], []

    def predict():
        while not stop.is_set():
            try:
                answers.append(engine.predict_success(60, 1.0, 1.0, 50.0, GOOD[0]))
            except Exception as exc:  # pragma: no cover - the failure being tested for
                errors.append(exc)
            # A caller that never yields the GIL (no real one does) slowed train() from
            # ~1 s to minutes by lock convoy; a 1 ms pause keeps both running together.
            stop.wait(0.001)

    thread = threading.Thread(target=predict, name="predictor")
    thread.start()
    try:
        for _ in range(3):
            engine.train()
            engine.partial_train(failure_payloads(pdb, GOOD[0], 3, t0=4e9 + len(answers)))
    finally:
        stop.set()
        thread.join(5)
    assert not errors and answers and all(0.0 <= a <= 1.0 for a in answers)


# -- model selection -----------------------------------------------------------------
class ConstantFamily(ModelFamily):
    """Test model: always predicts the training base rate (the majority class)."""

    inputs = "features"
    incremental = "none"

    def build(self, seed):
        return _Constant()

    def partial_update(self, estimator, X, y, replay, seed):
        return _Constant().fit(X, y)

    def predict_proba(self, estimator, X):
        return np.full(len(X), estimator.rate)


class _Constant:
    rate = 0.5

    def fit(self, X, y):
        self.rate = float(np.mean(y))
        return self


register("constant", f"{__name__}:ConstantFamily")


@pytest.mark.parametrize("order", [["constant", "logreg"], ["logreg", "constant"]])
def test_auto_train_keeps_the_better_cv_score(filled, order, tmp_path):
    engine = LearningEngine(*filled, model="constant", persist_path=tmp_path / "h.jsonl")
    best = engine.auto_train(order)
    scores = engine.last_auto_train["candidates"]
    assert best == "logreg" == engine.model_name
    assert scores["logreg"]["cv_score"] > scores["constant"]["cv_score"]
    assert engine.is_trained and engine.n_seen == 400
    entry = engine.evaluation_history[-1]
    assert entry["source"] == "auto_train" and set(entry["candidates"]) == {"constant", "logreg"}
    assert engine.load_history()[-1] == entry
    assert engine.predict_success(60, 2.0, 2.0, 50.0, GOOD[0]) > engine.predict_success(
        60, 2.0, 2.0, 50.0, BAD[0])


def test_auto_train_time_budget_skips_later_candidates(filled):
    engine = LearningEngine(*filled)
    best = engine.auto_train(["logreg", "rf", "nn"], time_budget=0.0)
    assert best == "logreg"
    assert engine.last_auto_train["candidates"]["nn"] == {"skipped": "time budget spent"}


def test_auto_train_rejects_unknown_candidates_before_any_work(filled):
    engine = LearningEngine(*filled)
    with pytest.raises(ValueError, match="logreg"):
        engine.auto_train(["logreg", "svm"])
    with pytest.raises(ValueError, match="at least one"):
        engine.auto_train([])
    with pytest.raises(ValueError, match="model names"):
        engine.auto_train(["logreg", 3])
    assert not engine.is_trained


def test_progress_and_cancel_are_checked(filled):
    engine = LearningEngine(*filled)
    with pytest.raises(ValueError, match="progress"):
        engine.train(progress="50%")
    with pytest.raises(ValueError, match="cancel"):
        engine.evaluate(cancel=True)
    with pytest.raises(ValueError, match="cancel"):
        engine.auto_train(["logreg"], cancel=object())
    assert not engine.is_trained


# -- persistence ---------------------------------------------------------------------
@pytest.mark.parametrize("model", TABULAR)
def test_a_new_engine_starts_from_the_saved_model(filled, model):
    pdb, mm = filled
    engine = LearningEngine(pdb, mm, model=model)
    engine.train()
    # Default folder: <folder of pathways.db>/models/<engine name>/
    assert engine.model_path() == Path(pdb.path).resolve().parent / "models" / "pathways" / f"{model}.skops"
    restarted = LearningEngine(pdb, mm, model=model)
    assert restarted.is_trained and restarted.n_seen == 400
    probe = (60, 2.0, 2.0, 50.0, GOOD[0])
    assert restarted.predict_success(*probe) == engine.predict_success(*probe)
    assert not LearningEngine(pdb, mm, model="nn" if model != "nn" else "rf").is_trained


def test_partial_updates_are_saved_every_few_calls(filled, tmp_path):
    pdb, mm = filled
    engine = LearningEngine(pdb, mm, save_every=2, save_interval=0, model_dir=tmp_path / "models")
    engine.partial_train(failure_payloads(pdb, GOOD[0], 2))
    assert not engine.model_path().exists()
    engine.partial_train(failure_payloads(pdb, GOOD[0], 2, t0=2.1e9))
    assert engine.model_path().exists()
    assert LearningEngine(pdb, mm, model_dir=tmp_path / "models").n_seen == 4


def test_partial_saves_wait_for_the_save_interval(filled, tmp_path):
    pdb, mm = filled
    engine = LearningEngine(pdb, mm, save_every=1, save_interval=3600, model_dir=tmp_path / "m")
    engine.partial_train(failure_payloads(pdb, GOOD[0], 2))
    engine.partial_train(failure_payloads(pdb, GOOD[0], 2, t0=2.1e9))
    assert not engine.model_path().exists()
    assert engine.save() == engine.model_path()  # what a service does at shutdown
    assert LearningEngine(pdb, mm, model_dir=tmp_path / "m").n_seen == 4


def test_a_corrupted_model_file_is_logged_and_ignored(filled, caplog):
    pdb, mm = filled
    engine = LearningEngine(pdb, mm)
    engine.train()
    engine.model_path().write_bytes(b"\x00not a model")
    with caplog.at_level(logging.ERROR, logger="menace.learning_engine"):
        restarted = LearningEngine(pdb, mm)
    assert not restarted.is_trained
    assert "cannot be loaded" in caplog.text and str(engine.model_path()) in caplog.text
    assert restarted.train() is True  # and the next save replaces it
    assert LearningEngine(pdb, mm).is_trained


def test_a_model_saved_with_another_feature_set_is_not_used(filled, caplog):
    pdb, mm = filled
    LearningEngine(pdb, mm).train()
    with caplog.at_level(logging.WARNING, logger="menace.learning_engine"):
        assert not LearningEngine(pdb, mm, features="seed").is_trained
    assert "features" in caplog.text


# -- the spec's examples, as written -------------------------------------------------
SPEC_TRAIN = """
from menace.neuroplasticity import PathwayDB
from menace.menace_memory_manager import MenaceMemoryManager
from menace.learning_engine import LearningEngine

pdb = PathwayDB("pathways.db")
mm = MenaceMemoryManager("mem.db")
engine = LearningEngine(pdb, mm)
engine.train()
prob = engine.predict_success(1.0, 1.0, 1.0, 1.0, "actions")
"""
SPEC_EVALUATE = """
score = engine.evaluate()
print(score["cv_score"], score["holdout_score"])
"""
SPEC_AUTO = """
best = engine.auto_train(["logreg", "nn"])
print("best model", best)
"""


def test_spec_first_example_on_empty_databases(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(SPEC_TRAIN, namespace)
    assert namespace["prob"] == UNTRAINED_PROBABILITY


def test_spec_examples_run_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    seeded = PathwayDB("pathways.db")
    seeded.log_many(make_runs(150, seed=3))
    seeded.close()
    namespace: dict = {}
    for block in (SPEC_TRAIN, SPEC_EVALUATE, SPEC_AUTO):
        exec(block, namespace)
    assert 0.0 <= namespace["prob"] <= 1.0
    out = capsys.readouterr().out
    assert "best model" in out and namespace["best"] in {"logreg", "nn"}
    assert (tmp_path / "models" / "pathways" / f"{namespace['best']}.skops").exists()


@pytest.mark.parametrize("features", ["full", "embedding", "seed"])
def test_a_texts_columns_are_computed_once_and_equal_a_fresh_computation(stores, monkeypatch, features):
    """The pipeline keeps each text's columns (a pathway's runs share them): a repeated text
    costs no embedding lookup, the matrix equals one built from scratch, and past the cache's
    bound (cleared, or a batch too large to keep) it is still exact."""
    from menace import features as features_module
    from menace.features import FeaturePipeline, order_matrix
    from menace.models import get_family

    pdb, mm = stores
    family = get_family("logreg")
    pipeline = FeaturePipeline(pdb, mm, features)
    embedded: list[str] = []
    real = mm.embed_many
    monkeypatch.setattr(mm, "embed_many", lambda texts: embedded.extend(texts) or real(texts))

    def expected(numbers, texts):
        vectors = real(texts)
        parts = [numbers, vectors.mean(axis=1, dtype=np.float64)[:, None]]
        if features != "seed":
            parts.append(vectors.astype(np.float64))
        if features == "full":
            parts.append(order_matrix(texts))
        return np.hstack(parts)

    rng = np.random.default_rng(0)
    texts = ["fetch->parse", "parse->fetch", "fetch->parse", "scan->patch->deploy"]
    numbers = rng.random((4, 4))
    X = pipeline.transform(numbers, texts, family)
    assert np.array_equal(X, expected(numbers, texts))
    assert X.shape[1] == len(pipeline.names(family))
    assert sorted(embedded) == sorted(set(texts))  # each distinct text embedded once
    embedded.clear()
    again = ["scan->patch->deploy", "fetch->parse"] * 3
    more = rng.random((6, 4))
    assert np.array_equal(pipeline.transform(more, again, family), expected(more, again))
    assert embedded == []  # known texts: no lookup at all

    monkeypatch.setattr(features_module, "TEXT_BLOCK_CACHE", 2)
    many = [f"step{i}->done" for i in range(5)]  # more than the cache keeps
    five = rng.random((5, 4))
    assert np.array_equal(pipeline.transform(five, many, family), expected(five, many))
    for batch in (["a->b"], ["b->c", "c->d"], ["a->b", "fetch->parse"]):  # overflow: cleared, refilled
        nums = rng.random((len(batch), 4))
        assert np.array_equal(pipeline.transform(nums, batch, family), expected(nums, batch))
    assert pipeline.transform(np.zeros((0, 4)), [], family).shape == (0, X.shape[1])
