"""The model menu: registry, splits and scores, and each family's incremental update."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest

from menace.models import ReplayBuffer, available_models, get_family
from menace.models.selection import (
    accuracy,
    check_splittable,
    holdout_split,
    roc_auc,
    stratified_folds,
)


def test_unknown_family_is_a_value_error_listing_the_menu():
    with pytest.raises(ValueError, match="logreg.*nn.*rf"):
        get_family("gradient-boosting")


def test_names_are_case_insensitive_and_never_swapped():
    assert get_family(" LogReg ").name == "logreg"
    assert [get_family(n).name for n in ("logreg", "nn", "rf")] == ["logreg", "nn", "rf"]
    assert {"logreg", "nn", "rf", "transformer", "bert"} <= set(available_models())


def test_importing_the_engine_pulls_in_neither_torch_nor_transformers():
    code = (
        "import sys, menace.models, menace.learning_engine\n"
        "from menace.models import available_models\n"
        "available_models()\n"
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_menu_itself_does_not_need_scikit_learn():
    code = (
        "import sys; sys.modules['sklearn'] = None\n"  # makes 'import sklearn' fail
        "import menace.models.registry as r, menace.models.selection as s, numpy as np\n"
        "assert 'logreg' in r.available_models()\n"
        "y = np.array([0, 1] * 10); s.holdout_split(y, 0.2, 0); s.stratified_folds(y, 5, 0)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- splits and scores ---------------------------------------------------------------
def test_holdout_is_stratified_seeded_and_disjoint():
    y = np.array([1] * 30 + [0] * 70)
    train, test = holdout_split(y, 0.2, seed=3)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 100
    assert (y[test] == 1).sum() == 6 and (y[test] == 0).sum() == 14
    again = holdout_split(y, 0.2, seed=3)
    assert np.array_equal(test, again[1])
    assert not np.array_equal(test, holdout_split(y, 0.2, seed=4)[1])


def test_folds_cover_everything_once_with_both_classes():
    y = np.array([1] * 12 + [0] * 23)
    folds = stratified_folds(y, 5, seed=0)
    valid = np.concatenate([v for _, v in folds])
    assert sorted(valid.tolist()) == list(range(35))
    for train, v in folds:
        assert len(np.intersect1d(train, v)) == 0
        assert set(y[v]) == {0, 1} and set(y[train]) == {0, 1}
    shuffled = [v.tolist() for _, v in folds] != [list(range(i * 7, i * 7 + 7)) for i in range(5)]
    assert shuffled


def test_too_little_data_message_counts_each_class():
    with pytest.raises(ValueError, match="have 3 and 40"):
        check_splittable(np.array([1] * 3 + [0] * 40), cv=5, test_split=0.2)
    check_splittable(np.array([1] * 6 + [0] * 6), cv=5, test_split=0.2)


def test_scores_match_scikit_learn():
    from sklearn.metrics import accuracy_score, roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1).round(2)  # rounding makes ties
    assert roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert accuracy(y, p) == pytest.approx(accuracy_score(y, (p >= 0.5).astype(int)))
    assert roc_auc(np.ones(5, dtype=int), np.linspace(0, 1, 5)) == 0.5


# -- incremental updates -------------------------------------------------------------
def data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)) * [1, 10, 100, 1, 1, 1]
    y = (X[:, 0] + X[:, 1] / 10 + rng.normal(scale=0.5, size=n) > 0).astype(int)
    return X, y


@pytest.mark.parametrize("name", ["logreg", "nn", "rf"])
def test_partial_update_returns_a_new_model_and_leaves_the_live_one(name):
    family = get_family(name)
    X, y = data()
    live = family.fit(family.build(0), X, y)
    snapshot = family.predict_proba(live, X)
    frozen = copy.deepcopy(live)
    replay = ReplayBuffer(500)
    Xn, yn = X[:40], 1 - y[:40]  # contradicting examples
    replay.extend(list(X), y)
    replay.extend(list(Xn), yn)
    updated = family.partial_update(live, Xn, yn, replay, 0)
    assert updated is not live
    assert np.array_equal(family.predict_proba(live, X), snapshot)
    assert np.array_equal(family.predict_proba(frozen, X), snapshot)
    assert not np.allclose(family.predict_proba(updated, X), snapshot)


def test_forest_keeps_its_base_trees_and_bounds_the_update_trees():
    from menace.models import rf

    family = get_family("rf")
    X, y = data()
    live = family.fit(family.build(0), X, y)
    base = list(live.named_steps["model"].estimators_)
    replay = ReplayBuffer(200)
    replay.extend(list(X), y)
    for _ in range(8):
        live = family.partial_update(live, X[:10], y[:10], replay, 0)
    trees = live.named_steps["model"].estimators_
    assert trees[: rf.BASE_TREES] == base
    assert len(trees) == rf.BASE_TREES + rf.MAX_UPDATE_TREES


def test_forest_waits_for_both_classes_when_starting_cold():
    family = get_family("rf")
    replay = ReplayBuffer(10)
    replay.extend([np.zeros(3)], [1])
    assert family.partial_update(None, np.zeros((1, 3)), np.array([1]), replay, 0) is None


def test_replay_buffer_is_bounded():
    replay = ReplayBuffer(3)
    replay.extend([np.full(2, i) for i in range(10)], [i % 2 for i in range(10)])
    X, y = replay.arrays()
    assert len(replay) == 3 and X[:, 0].tolist() == [7, 8, 9] and y.tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0)


@pytest.mark.parametrize("name", ["logreg", "nn", "rf"])
def test_saved_file_round_trips_without_pickle(tmp_path, name):
    family = get_family(name)
    X, y = data()
    model = family.fit(family.build(0), X, y)
    path = tmp_path / f"{name}.skops"
    family.save(model, {"model": name, "n_seen": 300}, path)
    loaded, meta = family.load(path)
    assert meta == {"model": name, "n_seen": 300}
    assert np.array_equal(family.predict_proba(loaded, X), family.predict_proba(model, X))
    assert path.read_bytes()[:2] == b"PK"  # a skops zip archive, not a pickle stream
