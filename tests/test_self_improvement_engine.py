"""SelfImprovementEngine: each cycle retrains on the latest data and evaluates."""

from __future__ import annotations

import pytest
from workloads import make_runs

from menace.learning_engine import LearningEngine
from menace.menace_memory_manager import MenaceMemoryManager
from menace.neuroplasticity import PathwayDB
from menace.self_improvement_engine import CycleReport, SelfImprovementEngine


@pytest.fixture
def engine(tmp_path):
    pdb = PathwayDB(tmp_path / "pathways.db")
    mm = MenaceMemoryManager(tmp_path / "mem.db", embedder="hashing")
    yield LearningEngine(pdb, mm, persist_path=tmp_path / "evaluations.jsonl")
    pdb.close()
    mm.close()


def test_a_cycle_on_no_data_reports_instead_of_raising(engine):
    report = SelfImprovementEngine(learning_engine=engine).run_cycle()
    assert isinstance(report, CycleReport)
    assert report.trained is False and report.cv_score is None and "not enough data" in report.note


def test_each_cycle_retrains_on_the_latest_data_and_evaluates(engine):
    improver = SelfImprovementEngine(learning_engine=engine, cv=3)
    engine.pathway_db.log_many(make_runs(200))
    first = improver.run_cycle()
    assert first.trained and first.n_examples == 200 and first.model == "logreg"
    assert 0.0 <= first.cv_score <= 1.0 and 0.0 <= first.holdout_score <= 1.0
    engine.pathway_db.log_many(make_runs(100, seed=9, t0=2e9))
    second = improver.run_cycle()
    assert second.cycle == 2 and second.n_examples == 300 and engine.n_seen == 300
    assert improver.reports == [first, second]
    assert len(engine.load_history()) == 2
    assert set(second.to_dict()) >= {"trained", "cv_score", "holdout_score", "duration_s", "ts"}


def test_a_cycle_with_too_few_runs_to_split_still_trains(engine):
    engine.pathway_db.log_many(make_runs(12))
    report = SelfImprovementEngine(learning_engine=engine).run_cycle()
    assert report.trained and report.cv_score is None and "not evaluated" in report.note


def test_without_an_engine_a_cycle_says_so():
    report = SelfImprovementEngine().run_cycle()
    assert not report.trained and "no learning engine" in report.note


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="cv"):
        SelfImprovementEngine(cv=1)
    with pytest.raises(ValueError, match="test_split"):
        SelfImprovementEngine(test_split=0)
