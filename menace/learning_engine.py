"""LearningEngine: predicts whether a run of a pathway will succeed.

A facade over small parts, each in its own module:

* :mod:`menace.features`: the one feature pipeline (the example unit, the
  columns, no label leakage) used by ``train``, ``partial_train``,
  ``predict_success`` and ``evaluate`` alike;
* :mod:`menace.labels`: the labelling rule (1 for ``SUCCESS``, 0 for
  ``PARTIAL_SUCCESS`` and ``FAILURE``);
* :mod:`menace.models`: the model menu (``logreg``, ``nn``, ``rf``,
  ``transformer`` / ``bert``) and how each learns an incremental update;
* :mod:`menace.evaluation`: cross-validation, the holdout, model selection;
* :mod:`menace.history`: the evaluation history on disk;
* :mod:`menace.model_store`: saving and loading the live model safely;
* :mod:`menace.run_ledger`: which runs the model already learned.

The tabular models (``logreg``, ``nn``, ``rf``) wrap their classifier in a
scikit-learn ``Pipeline`` whose ``StandardScaler`` is fitted, saved and
applied with the model, so no model ever sees unscaled features. Text models
take the action text alone. With ``features="full"`` (the default) logreg's
holdout accuracy on ``bench/quality.py`` goes from 0.728 (five seed columns)
to 0.773, against a best achievable 0.775 (``bench/results/quality.md``).

**Threads.** One thread at a time trains (``train``, ``partial_train``,
``auto_train`` share a lock); ``predict_success`` may run in any thread at any
time: the live model is replaced by one reference assignment, never changed in
place, so a prediction sees either the old model or the new one.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import evaluation, metrics_exporter
from .errors import FieldError, TrainingCancelled
from .features import FEATURE_SETS, SEED_FEATURES, Examples, FeaturePipeline
from .history import EvaluationHistory
from .model_store import ModelStore, model_meta
from .models import ModelFamily, ReplayBuffer, available_models, get_family
from .prequential import DEFAULT_DELTA, DEFAULT_WINDOW, Drift, OnlineQuality, PrequentialScore
from .progress import Progress, check_cancel, check_hooks, report, within
from .protocols import EmbeddingSource, PathwayStore
from .run_ledger import RunLedger
from .validation import check_name, check_number, check_positive_int, check_text, expand_path

logger = logging.getLogger(__name__)

__all__ = [
    "FEATURE_SETS", "SEED_FEATURES", "UNTRAINED_PROBABILITY", "LearnedRuns", "LearningEngine",
    "LiveModel", "TrainingCancelled",
]

#: The model of an engine made with ``model=None`` and no remembered choice.
DEFAULT_MODEL = "logreg"
#: What :meth:`LearningEngine.predict_success` answers before any training.
UNTRAINED_PROBABILITY = 0.5
#: The engine's ledger of learned runs (the name older code imports).
LearnedRuns = RunLedger


@dataclass(frozen=True)
class LiveModel:
    """The fitted model in use: its family and estimator. Replaced as a whole, never mutated."""

    family: ModelFamily
    estimator: Any


class LearningEngine:
    """Learns from ``PathwayDB`` runs which pathways succeed.

    Args:
        pathway_db: the pathway store to learn from (a
            :class:`~menace.neuroplasticity.PathwayDB`, or anything with the
            methods of :class:`~menace.protocols.PathwayStore`).
        memory_mgr: embeds the action text (a
            :class:`~menace.menace_memory_manager.MenaceMemoryManager`).
        model: a name from :func:`menace.models.available_models`
            (``logreg``, ``nn``, ``rf``, ``transformer``, ``bert``).
        persist_path: ``.jsonl`` or SQLite (``.db`` / ``.sqlite``) file that
            every ``evaluate()`` result is appended to; ``None`` keeps them in
            memory only.
        model_dir: where the live model is saved; default
            ``<folder of pathway_db>/models/<name>/``.
        name: this engine's name (in saved files, evaluation results and metrics).
        seed: seed of every split and model (same seed, same scores).
        features: ``"full"`` (five seed features + the embedding vector) or
            ``"seed"`` (the five seed features only).
        replay_size: examples kept for models that learn updates by refit.
        save_every, save_interval: after partial updates, save the model once
            at least ``save_every`` learning ``partial_train`` calls (0: never)
            and ``save_interval`` seconds have passed since the last save, so
            saving a large model costs the same per example whatever the data
            size. Full training always saves; call :meth:`save` at shutdown.
        model_params: keyword arguments for the model family, e.g.
            ``{"model_path": "/models/my-bert", "epochs": 2}`` for
            ``transformer`` (see :mod:`menace.models.transformer`).
        metrics: where scores are exported (default: the process-wide
            :data:`menace.metrics_exporter.METRICS`).
        prequential_window: runs in the rolling test-then-train figures
            (:mod:`menace.prequential`).
        drift_delta: confidence of the drift detector (ADWIN's ``delta``;
            lower finds fewer, surer drifts).
        prequential_path: ``.jsonl`` file the test-then-train figures are
            appended to (at most every ``prequential_save_interval`` seconds,
            and at each save), so a restart keeps the curve; ``None``: not kept.
        score_updates: test-then-train scoring and drift detection in every
            incremental update (on by default; ``bench/learning_quality.py``
            measures what it costs).
        history, model_store: where evaluations and saved models live instead
            of ``persist_path`` and ``model_dir`` (objects with the methods of
            :class:`~menace.history.EvaluationHistory` and
            :class:`~menace.model_store.ModelStore`; the PostgreSQL backend
            keeps both in the database).

    ``model=None`` takes the model the engine used last (an ``auto_train``
    choice is remembered in ``model_dir``), else ``logreg``.
    """

    def __init__(
        self,
        pathway_db: PathwayStore,
        memory_mgr: EmbeddingSource | None = None,
        model: str | None = "logreg",
        *,
        persist_path: str | os.PathLike[str] | None = None,
        model_dir: str | os.PathLike[str] | None = None,
        name: str = "pathways",
        seed: int = 0,
        features: str = "full",
        replay_size: int = 2000,
        save_every: int = 25,
        save_interval: float = 30.0,
        model_params: dict[str, Any] | None = None,
        metrics: metrics_exporter.LearningMetrics | None = None,
        prequential_window: int = DEFAULT_WINDOW,
        drift_delta: float = DEFAULT_DELTA,
        prequential_path: str | os.PathLike[str] | None = None,
        prequential_save_interval: float = 10.0,
        score_updates: bool = True,
        history: EvaluationHistory | None = None,
        model_store: ModelStore | None = None,
    ) -> None:
        if pathway_db is None:
            raise FieldError("pathway_db", "pathway_db is required")
        self.pathway_db = pathway_db
        self.memory_mgr = memory_mgr
        self.name = check_name("name", name)  # part of file names: no path separators
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise FieldError("seed", f"seed must be a non-negative integer, got {seed!r}")
        self.seed = seed
        self.pipeline = FeaturePipeline(pathway_db, memory_mgr, features)
        self.save_every = check_positive_int("save_every", save_every, minimum=0)
        self.save_interval = check_number("save_interval", save_interval, minimum=0.0)
        if model_params is not None and not isinstance(model_params, dict):
            raise FieldError("model_params", f"model_params must be a dict, got {type(model_params).__name__}")
        self.model_params = dict(model_params or {})
        if model_store is not None:
            self.model_dir = model_store.model_dir
            self._models = model_store
        else:
            self.model_dir = self._default_model_dir(model_dir)
            self._models = ModelStore(self.name, self.model_dir)
        if model is None:
            model = self._models.chosen() or DEFAULT_MODEL
        self._family = self._family_for(model, self.model_params)
        self._params_model = self._family.name  # model_params belong to this model only
        self.metrics = metrics if metrics is not None else _default_metrics()
        self._history = history if history is not None else EvaluationHistory(self.name, persist_path)
        #: Test-then-train figures, drift monitor and kept curve (:mod:`menace.prequential`).
        self.quality = OnlineQuality(
            self.name, self.metrics,
            window=check_positive_int("prequential_window", prequential_window),
            delta=check_number("drift_delta", drift_delta, minimum=1e-12, maximum=1.0),
            path=_jsonl_path("prequential_path", prequential_path),
            save_interval=check_number("prequential_save_interval", prequential_save_interval, minimum=0.0),
        )
        self.score_updates = bool(score_updates)

        self._newest_run = 0  # the store's newest (or known settled) run id as last read: ids beyond are checked
        self._lock = threading.RLock()  # one trainer at a time
        self._live: LiveModel | None = None
        self._replay = ReplayBuffer(check_positive_int("replay_size", replay_size))
        self._replay_seeded = False
        self._updates_since_save = 0
        self._last_save = time.monotonic()
        #: Examples the live model has learned (full training + partial updates).
        self.n_seen = 0
        #: Highest run id the last full training saw; partial updates skip older runs.
        self.trained_through_run_id = 0
        #: Runs learned by partial updates since; partial updates skip them too.
        self.learned_runs = RunLedger(what="learned runs")
        #: The scores of every candidate of the last ``auto_train`` (None before).
        self.last_auto_train: dict[str, Any] | None = None
        self.metrics.engine_started(self.name, self.model_name)
        last = self._history.last()
        if last is not None:
            self.metrics.observe_evaluation(self.name, last)  # a restart shows the last scores
        self._load_saved_model()

    # -- configuration -----------------------------------------------------
    def _family_for(self, model: str, params: dict[str, Any] | None = None) -> ModelFamily:
        if not isinstance(model, str):
            raise FieldError("model", f"model must be one of {', '.join(available_models())}; got {model!r}")
        family = get_family(model, **(params or {}))
        family.check_available()
        if family.inputs == "features" and self.memory_mgr is None:
            raise FieldError("memory_mgr", f"model {family.name!r} needs memory_mgr to embed the action text")
        return family

    def _default_model_dir(self, model_dir: Any) -> Path | None:
        if model_dir is not None:
            return expand_path("model_dir", check_text("model_dir", os.fspath(model_dir), allow_empty=False))
        db_path = str(getattr(self.pathway_db, "path", "") or "")
        if not db_path or db_path == ":memory:" or "://" in db_path:
            return None  # nowhere sensible to save: no persistence unless given a folder
        return Path(db_path).expanduser().resolve().parent / "models" / self.name

    @property
    def persist_path(self) -> Path | None:
        """The evaluation history file, or ``None``."""
        return self._history.path

    @property
    def evaluation_history(self) -> list[dict[str, Any]]:
        """Every ``evaluate()`` / ``auto_train()`` result of this engine, oldest first."""
        return self._history.entries

    @property
    def features(self) -> str:
        return self.pipeline.features

    @property
    def model_name(self) -> str:
        """Name of the model family in use (changes when ``auto_train`` picks another)."""
        return self._family.name

    @property
    def model_family(self) -> ModelFamily:
        """The model family in use."""
        return self._family

    @property
    def live_model(self) -> LiveModel | None:
        """The fitted model predictions use now, or ``None`` before any training."""
        return self._live

    @property
    def is_trained(self) -> bool:
        """True once a model has been fitted (or loaded)."""
        return self._live is not None

    @property
    def uses_embeddings(self) -> bool:
        """Whether this engine's features embed the action text (text models do not)."""
        return self._family.inputs == "features"

    @property
    def feature_names(self) -> list[str]:
        """Column names of the feature rows, in order (empty for text models)."""
        return self.pipeline.names(self._family)

    def features_of(self, numbers: np.ndarray, texts: list[str], family: ModelFamily | None = None) -> Any:
        """The model input for runs (see :mod:`menace.features`)."""
        return self.pipeline.transform(numbers, texts, family or self._family)

    # -- prediction --------------------------------------------------------
    def predict_success(
        self, freq: float, exec_time: float, roi: float, myelination: float, actions: str
    ) -> float:
        """Probability (0..1) that a run of ``actions`` succeeds.

        ``freq`` is the pathway's frequency before the run (0 for a new one),
        ``exec_time`` the run's time in seconds, ``roi`` its return, and
        ``myelination`` the pathway's myelination score before the run. Before
        any training the answer is :data:`UNTRAINED_PROBABILITY` (0.5: no
        evidence either way). Raises ``ValueError`` for a negative or
        non-finite ``freq`` or ``exec_time``, non-finite ``roi`` or
        ``myelination``, or empty ``actions``.
        """
        row, text = self.pipeline.query_row(freq, exec_time, roi, myelination, actions)
        live = self._live  # one read: a concurrent swap cannot split this prediction
        if live is None:
            return UNTRAINED_PROBABILITY
        X = self.pipeline.transform(np.asarray([row], dtype=np.float64), [text], live.family)
        proba = float(live.family.predict_proba(live.estimator, X)[0])
        return min(max(proba, 0.0), 1.0) if math.isfinite(proba) else UNTRAINED_PROBABILITY

    # -- training ----------------------------------------------------------
    def train(
        self, progress: Progress | None = None, cancel: threading.Event | None = None, *,
        recent: int | None = None,
    ) -> bool:
        """Fit the model on every run in the database; return whether it could.

        ``recent``: fit on the newest ``recent`` runs only (the drift policy's
        retrain, so a changed workflow is learned from what it is now).
        Returns ``False`` (and keeps the current model) when there are no runs
        or only one class of outcome. ``progress(fraction, message)`` is called
        as work advances; setting ``cancel`` raises :class:`TrainingCancelled`
        and leaves the live model unchanged.
        """
        check_hooks(progress, cancel)
        if recent is not None:
            recent = check_positive_int("recent", recent, minimum=2)
        with self._lock:
            started = time.perf_counter()
            report(progress, 0.0, "reading runs")
            if recent is None:
                examples = self.pipeline.load(progress, cancel, (0.0, 0.3))
            else:
                examples = self.pipeline.recent(recent)
            if len(np.unique(examples.y)) < 2:
                logger.info(
                    "%s: not training: need runs of both outcomes, have %d runs (%d successes)",
                    self.name, len(examples), int(examples.y.sum()),
                )
                report(progress, 1.0, "not enough data to train")
                return False
            check_cancel(cancel)
            report(progress, 0.35, f"embedding {len(examples)} runs")
            family = self._family
            X = self.pipeline.transform(examples.numbers, examples.texts, family)
            check_cancel(cancel)
            report(progress, 0.5, f"fitting {family.name} on {len(examples)} runs")
            estimator = family.fit(family.build(self.seed), X, examples.y, within(progress, 0.5, 0.95), cancel)
            check_cancel(cancel)
            self._install(family, estimator, X, examples)
            report(progress, 0.95, "saving model")
            self.save()
            logger.info(
                "%s: trained %s on %d runs in %.2fs", self.name, family.name,
                len(examples), time.perf_counter() - started,
            )
            report(progress, 1.0, f"trained {family.name} on {len(examples)} runs")
            return True

    def _install(self, family: ModelFamily, estimator: Any, X: Any, examples: Examples) -> None:
        """Make a fully trained model live (caller holds the lock)."""
        self.quality.new_model(family_changed=family.name != self._family.name or self._live is None)
        self._models.remember_choice(family.name)
        self._family = family
        self._live = LiveModel(family, estimator)
        self.n_seen = len(examples)
        self.trained_through_run_id = int(examples.run_ids.max()) if len(examples) else 0
        self.learned_runs.clear()
        self._replay.clear()
        tail = slice(max(0, len(examples) - self._replay.capacity), len(examples))
        self._replay.extend(list(X[tail]), examples.y[tail])
        self._replay_seeded = True
        self._updates_since_save = 0
        self.metrics.set_model(self.name, family.name)

    def has_learned(self, run_id: int) -> bool:
        """Whether the live model learned run ``run_id`` (full training or a partial update)."""
        return self._live is not None and (run_id <= self.trained_through_run_id or run_id in self.learned_runs)

    def newest_learned_run_id(self) -> int:
        """The highest run id the live model learned (by full training or a partial update); 0 if none."""
        with self._lock:
            if self._live is None:
                return 0
            return max(self.trained_through_run_id, self.learned_runs.newest())

    def partial_train(self, record_or_batch: Any) -> bool:
        """Learn from new runs without retraining; return whether the model learned.

        Accepts a :class:`~menace.neuroplasticity.PathwayRecord`, a
        ``pathway:new`` payload dict, or a list of those. Payloads of runs the
        model already learned are skipped (:meth:`has_learned`: runs the last
        full ``train()`` saw, and runs an earlier partial update learned,
        :attr:`learned_runs`, saved with the model, so a run delivered again
        after a restart is not learned twice). A record is read as a run not
        logged yet (its priors are the pathway's current stats). How each
        model learns the update is in :mod:`menace.models` (``partial_fit``, or
        new trees on a bounded replay window for the forest); the cost per
        example never depends on the size of the database. Raises
        ``ValueError`` naming the bad item; then nothing is learned.
        """
        if isinstance(record_or_batch, list | tuple):
            items, single = list(record_or_batch), False
        else:
            items, single = [record_or_batch], True
        parsed = [
            self.pipeline.example(item, "record" if single else f"batch[{i}]") for i, item in enumerate(items)
        ]
        self._check_run_ids(parsed)
        with self._lock:
            fresh, batch_ids = [], set()
            for example in parsed:
                run_id = example[0]
                if run_id < 0:  # a record, not a logged run
                    fresh.append(example)
                elif not self._learned(run_id) and run_id not in batch_ids:
                    batch_ids.add(run_id)
                    fresh.append(example)
            if not fresh:
                return False
            return self._learn(fresh, batch_ids)

    def _check_run_ids(self, parsed: list) -> None:
        """Refuse run ids ahead of the store's newest run (``FieldError``): learning one would
        mark every run up to it as learned, so the runs logged later would never be learned."""
        top = max((example[0] for example in parsed), default=-1)
        if top <= self._newest_run:
            return
        known = getattr(self.pathway_db, "known_settled_run_id", None)
        if callable(known):  # PostgreSQL: its watcher saw these runs settle, no round trip (or wait) needed
            settled = known()
            if isinstance(settled, int) and top <= settled:
                self._newest_run = settled
                return
        try:
            self._newest_run = self.pathway_db.newest_run_id()
        except Exception as exc:  # a store without the method, or unreadable: nothing to compare
            logger.debug("%s: cannot read the newest run id: %s", self.name, exc)
            return
        if top > self._newest_run:
            raise FieldError(
                "run_id", f"run_id {top} is ahead of the newest run in the store ({self._newest_run})"
            )

    def _learned(self, run_id: int) -> bool:
        return run_id <= self.trained_through_run_id or run_id in self.learned_runs

    def _learn(self, fresh: list, batch_ids: set[int]) -> bool:
        """One incremental update on parsed, new examples (caller holds the lock)."""
        family = self._family
        numbers = np.asarray([e[1] for e in fresh], dtype=np.float64)
        y = np.asarray([e[3] for e in fresh], dtype=np.int64)
        X = self.pipeline.transform(numbers, [e[2] for e in fresh], family)
        if family.needs_replay and not self._replay_seeded:
            self._seed_replay(family, batch_ids)
        self._replay.extend(list(X), y)
        live = self._live
        if self.score_updates and live is not None and live.family is family:  # test, then train
            self.quality.score(family.predict_proba(live.estimator, X), y, family.name)
        estimator = family.partial_update(live.estimator if live is not None else None, X, y, self._replay, self.seed)
        if estimator is None:
            return False
        self._live = LiveModel(family, estimator)
        self.n_seen += len(y)
        self.learned_runs.add_all(batch_ids)
        self._updates_since_save += 1
        if (
            self.save_every
            and self._updates_since_save >= self.save_every
            and time.monotonic() - self._last_save >= self.save_interval
        ):
            self.save()
        return True

    @property
    def prequential(self) -> PrequentialScore:
        """The live model's rolling test-then-train figures."""
        return self.quality.score_

    @property
    def prequential_path(self) -> Path | None:
        return self.quality.path

    def prequential_snapshot(self) -> dict[str, Any] | None:
        """The live model's test-then-train figures now (``engine``, ``model``, ``ts`` added),
        or ``None`` before its first scored run."""
        return self.quality.snapshot(self._family.name)

    def pop_drift(self) -> Drift | None:
        """The drift found since the last call, if any (then forgotten)."""
        return self.quality.pop_drift()

    def prequential_history(self) -> list[dict[str, Any]]:
        """The test-then-train figures kept in ``prequential_path``, oldest first ([] without one)."""
        return self.quality.history()

    def _seed_replay(self, family: ModelFamily, batch_ids: set[int]) -> None:
        """Fill the replay window from the newest runs (a bounded read, once per process)."""
        self._replay_seeded = True
        recent = self.pipeline.recent(self._replay.capacity, exclude=batch_ids)  # the batch goes in next
        if len(recent):
            self._replay.extend(list(self.pipeline.transform(recent.numbers, recent.texts, family)), recent.y)

    # -- evaluation --------------------------------------------------------
    def evaluate(
        self,
        cv: int = 5,
        test_split: float = 0.2,
        *,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        max_examples: int | None = None,
    ) -> dict[str, Any]:
        """Measure the current model family on the current data; the live model is untouched.

        ``max_examples``: measure on the newest that many runs only (a periodic
        evaluation's cap, so it costs seconds whatever the size of the store).

        See :mod:`menace.evaluation`: ``cv_score`` (mean accuracy over ``cv``
        stratified, shuffled folds, ``cv_std`` their spread) and
        ``holdout_score`` / ``holdout_auc`` of a fresh model on a seeded,
        stratified ``test_split`` holdout it never saw (all in [0, 1]). The
        result (also ``ts``, ``model``, ``n_examples``) is appended to
        :attr:`evaluation_history`, to ``persist_path`` if set, and exported
        as this engine's score gauges. Raises ``ValueError`` when there are
        fewer than ``cv + 1`` runs of either outcome (the message says how
        many there are).
        """
        cv, test_split = evaluation.check_eval_args(cv, test_split)
        check_hooks(progress, cancel)
        report(progress, 0.0, "reading runs")
        if max_examples is not None and self.pathway_db.count_runs() > check_positive_int("max_examples", max_examples):
            examples = self.pipeline.recent(max_examples)
        else:
            examples = self.pipeline.load(progress, cancel, (0.0, 0.2))
        evaluation.check_splittable(examples.y, cv, test_split)
        family = self._family
        X = self.pipeline.transform(examples.numbers, examples.texts, family)
        scores = evaluation.score(
            family, X, examples.y, cv=cv, test_split=test_split, seed=self.seed,
            progress=progress, cancel=cancel, span=(0.25, 1.0),
        )
        entry = self._entry(family, scores, len(examples), cv, test_split)
        self._record(entry)
        report(progress, 1.0, f"cv {entry['cv_score']:.3f}, holdout {entry['holdout_score']:.3f}")
        return entry

    def _entry(self, family: ModelFamily, scores: dict, n: int, cv: int, test_split: float) -> dict[str, Any]:
        return {
            "engine": self.name,
            "model": family.name,
            "ts": time.time(),
            **scores,
            "n_examples": n,
            "cv": cv,
            "test_split": test_split,
            "features": self.pipeline.describe(family),
            "seed": self.seed,
        }

    def auto_train(
        self,
        candidates: Iterable[str],
        *,
        time_budget: float | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        cv: int = 5,
        test_split: float = 0.2,
    ) -> str:
        """Score each candidate model like :meth:`evaluate`, make the best live, return its name.

        The best is the highest ``cv_score`` (the earlier candidate wins a tie);
        it is then fitted on all runs, becomes the live model and is saved.
        Every candidate's scores are kept in :attr:`last_auto_train` and in the
        history entry (``candidates``). ``time_budget`` (seconds) bounds the
        scoring: once spent, the remaining candidates are skipped (recorded as
        such); the first candidate is always scored. Raises ``ValueError`` for
        an unknown name or too little data, :class:`TrainingCancelled` on
        ``cancel`` (the live model is then unchanged).
        """
        families = self._candidate_families(candidates)
        if time_budget is not None:
            time_budget = check_number("time_budget", time_budget, minimum=0.0)
        cv, test_split = evaluation.check_eval_args(cv, test_split)
        check_hooks(progress, cancel)
        with self._lock:
            report(progress, 0.0, "reading runs")
            examples = self.pipeline.load(progress, cancel, (0.0, 0.1))
            evaluation.check_splittable(examples.y, cv, test_split)
            inputs: dict[str, Any] = {}

            def inputs_for(family: ModelFamily) -> Any:
                if family.inputs not in inputs:
                    inputs[family.inputs] = self.pipeline.transform(examples.numbers, examples.texts, family)
                return inputs[family.inputs]

            best, results = evaluation.compare(
                families, inputs_for, examples.y, cv=cv, test_split=test_split, seed=self.seed,
                time_budget=time_budget, progress=progress, cancel=cancel, span=(0.1, 0.9),
            )
            check_cancel(cancel)
            report(progress, 0.9, f"fitting {best.name} on all {len(examples)} runs")
            X = inputs_for(best)
            estimator = best.fit(best.build(self.seed), X, examples.y, within(progress, 0.9, 0.95), cancel)
            check_cancel(cancel)
            self._install(best, estimator, X, examples)
            self.save()
            entry = self._entry(best, results[best.name], len(examples), cv, test_split)
            entry.update(source="auto_train", candidates=results)
            self.last_auto_train = {"best": best.name, "ts": entry["ts"], "candidates": results}
            self._record(entry)
            report(progress, 1.0, f"best model: {best.name}")
            return best.name

    def _candidate_families(self, candidates: Any) -> list[ModelFamily]:
        if isinstance(candidates, str):
            candidates = [candidates]
        try:
            raw = list(candidates)
        except TypeError:
            raise FieldError("candidates", f"candidates must be a list of model names, got {candidates!r}") from None
        for c in raw:
            if not isinstance(c, str):
                raise FieldError(
                    "candidates", f"candidates must be model names from {', '.join(available_models())}; got {c!r}"
                )
        names = list(dict.fromkeys(c.strip().lower() for c in raw))
        if not names:
            raise FieldError("candidates", "candidates must name at least one model")
        return [self._family_for(n, self.model_params if n == self._params_model else None) for n in names]

    def _record(self, entry: dict[str, Any]) -> None:
        """Keep an evaluation: history (and disk), and this engine's score gauges."""
        self._history.append(entry)
        self.metrics.observe_evaluation(self.name, entry, new=True)

    def load_history(self) -> list[dict[str, Any]]:
        """This engine's stored evaluations from ``persist_path``, oldest first (read again from disk)."""
        return self._history.load()

    # -- persistence -------------------------------------------------------
    def model_path(self, model: str | None = None) -> Path | None:
        """Where the model called ``model`` (default: the one in use) is saved."""
        return self._models.path(self._family if model is None else model)

    def _meta(self, family: ModelFamily) -> dict[str, Any]:
        embedder = getattr(self.memory_mgr, "embedder", None) if family.inputs == "features" else None
        return model_meta(
            self.name, family, features=self.pipeline.describe(family),
            embedder=getattr(embedder, "name", None),
            n_features=len(self.pipeline.names(family)),
            n_seen=self.n_seen, trained_through_run_id=self.trained_through_run_id,
            learned_runs=self.learned_runs.ranges(),
            prequential=self.quality.state(),
        )

    def save(self) -> Path | None:
        """Write the live model to :meth:`model_path` atomically; return the path.

        ``None`` when untrained or without a model folder. A failed save is
        logged and leaves the previous file in place.
        """
        with self._lock:
            live = self._live
            if live is None:
                return None
            if self.quality.path is not None:
                self.quality.keep_point(live.family.name)
            path = self._models.save(live.family, live.estimator, self._meta(live.family))
            if path is not None:
                self._updates_since_save = 0
                self._last_save = time.monotonic()
            return path

    def _load_saved_model(self) -> None:
        family = self._family
        loaded = self._models.load(family, self._meta(family))
        if loaded is None:
            return
        estimator, meta = loaded
        learned = self._saved_ledger(meta)
        if not self._plausible(meta["trained_through_run_id"], learned):
            return
        self._live = LiveModel(family, estimator)
        self.n_seen = meta["n_seen"]  # checked by model_store.check_meta
        self.trained_through_run_id = meta["trained_through_run_id"]
        self.learned_runs = learned
        self.quality.restore(meta.get("prequential"))
        self.metrics.observe_saved_training(self.name, meta.get("saved_at"))
        logger.info("%s: loaded %s model from %s (%d examples)", self.name, family.name,
                    self.model_path(), self.n_seen)

    def _saved_ledger(self, meta: dict[str, Any]) -> RunLedger:
        try:
            return RunLedger(meta.get("learned_runs") or (), what="learned runs")
        except (TypeError, ValueError) as exc:  # a damaged list only costs the deduplication
            logger.warning("%s: ignoring the saved list of learned runs (%s)", self.name, exc)
            return RunLedger(what="learned runs")

    def _plausible(self, trained_through: int, learned: RunLedger) -> bool:
        """Whether the saved model's runs exist: a model that claims runs beyond the store's
        newest would skip every run up to that id (it would never learn again)."""
        claimed = max(trained_through, learned.newest())
        if claimed <= 0:
            return True
        try:
            newest = self.pathway_db.newest_run_id()
        except Exception as exc:  # a store without the method, or unreadable: nothing to compare
            logger.debug("%s: cannot compare the saved model's runs with the store: %s", self.name, exc)
            return True
        if claimed <= newest:
            return True
        logger.error(
            "%s: saved model %s cannot be loaded (its metadata cannot be true: it learned run %d, "
            "but the newest run in the store is %d); starting untrained",
            self.name, self.model_path(), claimed, newest,
        )
        return False


def _jsonl_path(name: str, path: Any) -> Path | None:
    if path is None:
        return None
    return expand_path(name, check_text(name, os.fspath(path), allow_empty=False))


def _default_metrics() -> metrics_exporter.LearningMetrics:
    return metrics_exporter.METRICS
