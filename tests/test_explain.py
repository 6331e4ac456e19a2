"""menace.explain: why a prediction, and predictions for many pathways in one batch."""

from __future__ import annotations

import math

import pytest
from workloads import make_runs

from menace.client import Prediction
from menace.errors import FieldError
from menace.explain import explain, predict_many
from menace.learning_engine import LearningEngine
from menace.menace_memory_manager import MenaceMemoryManager
from menace.neuroplasticity import PathwayDB


@pytest.fixture
def stores(tmp_path):
    pdb = PathwayDB(tmp_path / "pathways.db")
    mm = MenaceMemoryManager(tmp_path / "mem.db", embedder="hashing")
    pdb.log_many(make_runs(400))
    yield pdb, mm
    pdb.close()
    mm.close()


@pytest.fixture(params=["logreg", "rf"])
def trained(stores, request):
    pdb, mm = stores
    engine = LearningEngine(pdb, mm, model=request.param)
    assert engine.train()
    return engine


def test_the_explained_probability_is_the_prediction(trained):
    args = (3, 1.5, 2.0, 0.5, "fetch->parse->store")
    explanation = explain(trained, *args)
    assert explanation.trained and explanation.model == trained.model_name
    assert math.isclose(explanation.probability, trained.predict_success(*args), abs_tol=1e-9)


def test_each_number_and_step_gets_a_contribution_equal_to_the_change_without_it(trained):
    explanation = explain(trained, 3, 1.5, 2.0, 0.5, "fetch->parse->store")
    names = {c.name for c in explanation.contributions}
    assert names == {"prior_frequency", "exec_time", "roi", "prior_myelination", "step 1", "step 2", "step 3"}
    mean = trained.live_model.estimator.named_steps["scale"].mean_
    roi = next(c for c in explanation.contributions if c.name == "roi")
    assert roi.value == 2.0 and roi.reference == pytest.approx(mean[2])
    without = trained.predict_success(3, 1.5, float(mean[2]), 0.5, "fetch->parse->store")
    assert roi.effect == pytest.approx(explanation.probability - without, abs=1e-9)
    step = next(c for c in explanation.contributions if c.name == "step 2")
    assert step.label == "parse" and step.kind == "step"
    without_step = trained.predict_success(3, 1.5, 2.0, 0.5, "fetch->store")
    assert step.effect == pytest.approx(explanation.probability - without_step, abs=1e-9)
    effects = [abs(c.effect) for c in explanation.contributions]
    assert effects == sorted(effects, reverse=True)
    assert "average" in explanation.method and "left out" in explanation.method


def test_a_high_roi_pushes_up_and_a_negative_one_down_for_logreg(stores):
    pdb, mm = stores
    engine = LearningEngine(pdb, mm, model="logreg")
    assert engine.train()
    up = next(c for c in explain(engine, 3, 1.5, 3.9, 0.5, "fetch->parse->store").contributions if c.name == "roi")
    down = next(c for c in explain(engine, 3, 1.5, -1.9, 0.5, "fetch->parse->store").contributions
                if c.name == "roi")
    assert up.effect > 0 > down.effect


def test_an_untrained_engine_explains_nothing(stores):
    pdb, mm = stores
    engine = LearningEngine(pdb, mm)
    explanation = explain(engine, 0, 1.0, 1.0, 0.0, "a->b")
    assert (explanation.probability, explanation.trained, explanation.contributions) == (0.5, False, ())


def test_bad_input_names_the_field(trained):
    with pytest.raises(FieldError) as exc:
        explain(trained, -1, 1.0, 1.0, 0.0, "a->b")
    assert exc.value.field == "freq"
    with pytest.raises(FieldError) as exc:
        predict_many(trained, [{"freq": 1, "exec_time": 1.0, "roi": 0.0, "myelination": 0.0, "actions": "a"},
                               {"freq": 1, "exec_time": 1.0, "roi": 0.0, "myelination": 0.0, "actions": " "}])
    assert exc.value.field == "queries[1].actions"
    with pytest.raises(FieldError) as exc:
        predict_many(trained, [{"freq": 1}])
    assert exc.value.field == "queries[0].exec_time"
    with pytest.raises(FieldError):
        predict_many(trained, {"freq": 1})


def test_predict_many_gives_what_predict_success_gives_one_by_one(trained):
    queries = [
        {"freq": f, "exec_time": 0.5 + f, "roi": r, "myelination": f / 3, "actions": a}
        for f, r, a in [(0, 1.0, "fetch->parse->store"), (7, -1.0, "scrape->force_push"), (2, 2.5, "new->thing")]
    ]
    batch = predict_many(trained, queries)
    assert all(isinstance(p, Prediction) and p.trained and p.model == trained.model_name for p in batch)
    one_by_one = [trained.predict_success(q["freq"], q["exec_time"], q["roi"], q["myelination"], q["actions"])
                  for q in queries]
    assert [p.probability for p in batch] == pytest.approx(one_by_one, abs=1e-9)
    assert predict_many(trained, []) == []
