"""LearningEngine: predicts whether a run of a pathway will succeed.

**Example unit.** One logged *run* (a row of ``PathwayDB.runs``), not a
pathway: a pathway that ran 50 times is 50 examples.

**Label.** :func:`menace.labels.label_of` of the run's outcome: 1 for
``SUCCESS``, 0 for ``PARTIAL_SUCCESS`` and ``FAILURE``, in full training,
incremental updates and evaluation alike.

**Features** (one feature pipeline, :meth:`LearningEngine.features_of`, used
by ``train``, ``partial_train``, ``predict_success`` and ``evaluate``), in this
column order:

0. ``prior_frequency``: how many times the pathway had run *before* this run;
1. ``exec_time``: this run's execution time in seconds;
2. ``roi``: this run's return on investment;
3. ``prior_myelination``: the pathway's myelination score just before this
   run (decayed to the run's time), so it never counts this run's outcome;
4. ``embedding_mean``: the mean of the action text's embedding
   (``MenaceMemoryManager.embed``, cached on disk);
5. ... ``4 + dim``: with ``features="full"`` (the default) the whole embedding
   vector of the action text follows (256 numbers with the hashing embedder,
   384 with MiniLM). ``features="seed"`` keeps only the five columns above.
   The full vector is what lets a linear model read the action text: on
   ``bench/quality.py`` logreg's holdout accuracy goes from 0.728 (five
   columns) to 0.773, against a best achievable 0.775 and a majority class of
   0.634 (all figures in ``bench/results/quality.md``).

Nothing in a row is known only after the run's outcome, so there is no label
leakage. The tabular models (``logreg``, ``nn``, ``rf``) wrap their classifier
in a scikit-learn ``Pipeline`` whose ``StandardScaler`` is fitted, saved and
applied with the model, so no model ever sees unscaled features. Text models
(``transformer`` / ``bert``, see :mod:`menace.models`) take the action text
alone.

**Threads.** One thread at a time trains (``train``, ``partial_train``,
``auto_train`` share a lock); ``predict_success`` may run in any thread at any
time: the live model is replaced by one reference assignment, never changed in
place, so a prediction sees either the old model or the new one.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import events
from .errors import TrainingCancelled
from .labels import label_of
from .models import ModelFamily, ReplayBuffer, available_models, get_family
from .models.selection import (
    accuracy,
    check_splittable,
    holdout_split,
    roc_auc,
    stratified_folds,
)
from .neuroplasticity import PathwayRecord, decay_factor
from .validation import check_number, check_positive_int, check_text, expand_path

logger = logging.getLogger(__name__)

SEED_FEATURES = ("prior_frequency", "exec_time", "roi", "prior_myelination", "embedding_mean")
FEATURE_SETS = ("full", "seed")
#: What :meth:`LearningEngine.predict_success` answers before any training.
UNTRAINED_PROBABILITY = 0.5
MODEL_FORMAT = 1
_PAGE = 20_000  # runs read from the database per query while loading

Progress = Callable[[float, str], None]


class LearnedRuns:
    """The run ids a model learned by partial updates, as sorted ``[first, last]`` ranges.

    Saved with the model, so a run delivered again after a restart (a replayed
    journal, a watcher resuming from an older point after a crash) is not
    learned a second time: it would weigh double. Runs usually arrive in order,
    so the ranges stay few; past :data:`LIMIT` ranges the oldest are dropped
    (those runs could then be learned again, and a warning says so).
    """

    LIMIT = 10_000

    def __init__(self, ranges: Iterable[Iterable[int]] = ()) -> None:
        self._firsts: list[int] = []
        self._lasts: list[int] = []
        for first, last in ranges:
            for run_id in (first, last):
                if isinstance(run_id, bool) or not isinstance(run_id, int):
                    raise ValueError(f"learned run ids must be integers, got {run_id!r}")
            self._firsts.append(first)
            self._lasts.append(last)
        if any(f > last for f, last in zip(self._firsts, self._lasts, strict=True)) or any(
            a >= b - 1 for a, b in zip(self._lasts, self._firsts[1:], strict=False)
        ):
            raise ValueError("learned run ranges must be sorted, disjoint and not adjacent")

    def __contains__(self, run_id: int) -> bool:
        i = bisect.bisect_right(self._firsts, run_id) - 1
        return i >= 0 and run_id <= self._lasts[i]

    def __len__(self) -> int:
        """How many run ids."""
        return sum(last - first + 1 for first, last in zip(self._firsts, self._lasts, strict=True))

    def add(self, run_id: int) -> None:
        firsts, lasts = self._firsts, self._lasts
        i = bisect.bisect_right(firsts, run_id) - 1
        if i >= 0 and run_id <= lasts[i]:
            return
        joins_left = i >= 0 and lasts[i] == run_id - 1
        joins_right = i + 1 < len(firsts) and firsts[i + 1] == run_id + 1
        if joins_left and joins_right:
            lasts[i] = lasts[i + 1]
            del firsts[i + 1], lasts[i + 1]
        elif joins_left:
            lasts[i] = run_id
        elif joins_right:
            firsts[i + 1] = run_id
        else:
            firsts.insert(i + 1, run_id)
            lasts.insert(i + 1, run_id)
            if len(firsts) > self.LIMIT:
                logger.warning(
                    "more than %d ranges of learned runs; forgetting runs %d-%d (they could be learned "
                    "again if delivered again)", self.LIMIT, firsts[0], lasts[0],
                )
                del firsts[0], lasts[0]

    def clear(self) -> None:
        self._firsts.clear()
        self._lasts.clear()

    def newest(self) -> int:
        """The highest run id (0 when empty)."""
        return self._lasts[-1] if self._lasts else 0

    def ranges(self) -> list[list[int]]:
        """JSON-able ``[[first, last], ...]``."""
        return [[f, last] for f, last in zip(self._firsts, self._lasts, strict=True)]


@dataclass(frozen=True)
class _Live:
    """The fitted model in use; replaced as a whole, never mutated."""

    family: ModelFamily
    estimator: Any


@dataclass
class Examples:
    """Training examples, one per run, in logged order."""

    run_ids: np.ndarray  # int64; -1 for a record that is not in the database
    numbers: np.ndarray  # float64 (n, 4): prior_frequency, exec_time, roi, prior_myelination
    texts: list[str]
    y: np.ndarray  # int64 labels, see menace.labels

    def __len__(self) -> int:
        return len(self.y)


def _report(progress: Progress | None, fraction: float, message: str) -> None:
    if progress is None:
        return
    try:
        progress(min(max(float(fraction), 0.0), 1.0), message)
    except Exception:  # a broken progress bar must not break training
        logger.exception("progress callback failed")


def _within(progress: Progress | None, lo: float, hi: float) -> Progress | None:
    """``progress`` for a sub-task: its fraction 0..1 is mapped onto ``lo..hi``."""
    if progress is None:
        return None
    return lambda fraction, message: _report(progress, lo + (hi - lo) * fraction, message)


def _check_hooks(progress: Any, cancel: Any) -> None:
    """``ValueError`` unless ``progress`` is callable and ``cancel`` event-like (or None)."""
    if progress is not None and not callable(progress):
        raise ValueError(f"progress must be callable(fraction, message), got {type(progress).__name__}")
    if cancel is not None and not callable(getattr(cancel, "is_set", None)):
        raise ValueError(f"cancel must be a threading.Event, got {type(cancel).__name__}")


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise TrainingCancelled("cancelled; the live model is unchanged")


class LearningEngine:
    """Learns from ``PathwayDB`` runs which pathways succeed.

    Args:
        pathway_db: the :class:`~menace.neuroplasticity.PathwayDB` to learn from.
        memory_mgr: the :class:`~menace.menace_memory_manager.MenaceMemoryManager`
            whose ``embed`` gives the action-text embedding (and its cache).
        model: a name from :func:`menace.models.available_models`
            (``logreg``, ``nn``, ``rf``, ``transformer``, ``bert``).
        persist_path: ``.jsonl`` or SQLite (``.db`` / ``.sqlite``) file that
            every ``evaluate()`` result is appended to; ``None`` keeps them in
            memory only.
        model_dir: where the live model is saved; default
            ``<folder of pathway_db>/models/<name>/``.
        name: this engine's name (in saved files and evaluation results).
        seed: seed of every split and model (same seed, same scores).
        features: ``"full"`` (five seed features + the embedding vector) or
            ``"seed"`` (the five seed features only).
        replay_size: examples kept for models that learn updates by refit.
        save_every, save_interval: after partial updates, save the model once
            at least ``save_every`` learning ``partial_train`` calls (0: never)
            and ``save_interval`` seconds have passed since the last save, so
            saving a large model (a forest grown on 100,000 runs) costs the
            same per example whatever the data size. Full training always
            saves; call :meth:`save` at shutdown for the rest.
        model_params: keyword arguments for the model family, e.g.
            ``{"model_path": "/models/my-bert", "epochs": 2}`` for
            ``transformer`` (see :mod:`menace.models.transformer`).
    """

    def __init__(
        self,
        pathway_db: Any,
        memory_mgr: Any = None,
        model: str = "logreg",
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
    ) -> None:
        if pathway_db is None:
            raise ValueError("pathway_db is required")
        self.pathway_db = pathway_db
        self.memory_mgr = memory_mgr
        self.name = check_text("name", name, allow_empty=False, max_len=100).strip()
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = seed
        if features not in FEATURE_SETS:
            raise ValueError(f"features must be one of {', '.join(FEATURE_SETS)}; got {features!r}")
        self.features = features
        self.save_every = check_positive_int("save_every", save_every, minimum=0)
        self.save_interval = check_number("save_interval", save_interval, minimum=0.0)
        if model_params is not None and not isinstance(model_params, dict):
            raise ValueError(f"model_params must be a dict, got {type(model_params).__name__}")
        self.model_params = dict(model_params or {})
        self._family = self._family_for(model, self.model_params)
        self._params_model = self._family.name  # model_params belong to this model only
        self.persist_path = self._check_persist_path(persist_path)
        self.model_dir = self._default_model_dir(model_dir)

        self._lock = threading.RLock()  # one trainer at a time
        self._live: _Live | None = None
        self._replay = ReplayBuffer(check_positive_int("replay_size", replay_size))
        self._replay_seeded = False
        self._updates_since_save = 0
        self._last_save = time.monotonic()
        #: Examples the live model has learned (full training + partial updates).
        self.n_seen = 0
        #: Highest run id the last full training saw; partial updates skip older runs.
        self.trained_through_run_id = 0
        #: Runs learned by partial updates since; partial updates skip them too.
        self.learned_runs = LearnedRuns()
        #: Every ``evaluate()`` / ``auto_train()`` result of this engine, oldest first.
        self.evaluation_history: list[dict[str, Any]] = []
        #: The scores of every candidate of the last ``auto_train`` (None before).
        self.last_auto_train: dict[str, Any] | None = None
        if self.persist_path is not None:
            self.evaluation_history = self.load_history()
        self._load_saved_model()

    # -- configuration -----------------------------------------------------
    def _family_for(self, model: str, params: dict[str, Any] | None = None) -> ModelFamily:
        if not isinstance(model, str):
            raise ValueError(f"model must be one of {', '.join(available_models())}; got {model!r}")
        family = get_family(model, **(params or {}))
        family.check_available()
        if family.inputs == "features" and self.memory_mgr is None:
            raise ValueError(f"model {family.name!r} needs memory_mgr to embed the action text")
        return family

    @staticmethod
    def _check_persist_path(path: Any) -> Path | None:
        if path is None:
            return None
        path = expand_path("persist_path", check_text("persist_path", os.fspath(path), allow_empty=False))
        if path.suffix.lower() not in {".jsonl", ".db", ".sqlite", ".sqlite3"}:
            raise ValueError(f"persist_path must end in .jsonl, .db or .sqlite, got {str(path)!r}")
        return path

    def _default_model_dir(self, model_dir: Any) -> Path | None:
        if model_dir is not None:
            return expand_path("model_dir", check_text("model_dir", os.fspath(model_dir), allow_empty=False))
        db_path = str(getattr(self.pathway_db, "path", "") or "")
        if not db_path or db_path == ":memory:":
            return None  # nowhere sensible to save: no persistence unless given a folder
        return Path(db_path).expanduser().resolve().parent / "models" / self.name

    @property
    def model_name(self) -> str:
        """Name of the model family in use (changes when ``auto_train`` picks another)."""
        return self._family.name

    @property
    def is_trained(self) -> bool:
        """True once a model has been fitted (or loaded)."""
        return self._live is not None

    @property
    def feature_names(self) -> list[str]:
        """Column names of the feature rows, in order (empty for text models)."""
        if self._family.inputs == "text":
            return []
        names = list(SEED_FEATURES)
        if self.features == "full":
            names += [f"embedding_{i}" for i in range(self._embedding_dim())]
        return names

    def _embedding_dim(self) -> int:
        return int(self.memory_mgr.embedder.dim) if self.memory_mgr is not None else 0

    # -- the feature pipeline ---------------------------------------------
    def features_of(self, numbers: np.ndarray, texts: list[str], family: ModelFamily | None = None) -> Any:
        """The model input for runs: a float matrix (see the module doc) or, for
        text models, an object array of the action texts.

        ``numbers`` is ``(n, 4)``: prior_frequency, exec_time, roi, prior_myelination.
        """
        family = family or self._family
        if family.inputs == "text":
            return np.asarray(texts, dtype=object)
        embeddings = self.memory_mgr.embed_many(list(texts))
        mean = embeddings.mean(axis=1, dtype=np.float64)
        if self.features == "seed":
            return np.column_stack([np.asarray(numbers, dtype=np.float64), mean])
        return np.hstack(
            [np.asarray(numbers, dtype=np.float64), mean[:, None], embeddings.astype(np.float64)]
        )

    def _load_examples(
        self,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        span: tuple[float, float] = (0.0, 0.3),
    ) -> Examples:
        """Every run in the database, paged, in logged order."""
        total = max(self.pathway_db.count_runs(), 1)
        ids: list[int] = []
        numbers: list[tuple[float, float, float, float]] = []
        texts: list[str] = []
        labels: list[int] = []
        last = 0
        while True:
            _check_cancel(cancel)
            page = self.pathway_db.runs(since_id=last, limit=_PAGE)
            if not page:
                break
            for run in page:
                ids.append(run["id"])
                numbers.append(
                    (run["prior_frequency"], run["exec_time"], run["roi"], run["prior_myelination"])
                )
                texts.append(run["actions"])
                labels.append(label_of(run["outcome"]))
            last = page[-1]["id"]
            _report(progress, span[0] + (span[1] - span[0]) * min(len(ids) / total, 1.0),
                    f"read {len(ids)} runs")
        return Examples(
            run_ids=np.asarray(ids, dtype=np.int64),
            numbers=np.asarray(numbers, dtype=np.float64).reshape(-1, 4),
            texts=texts,
            y=np.asarray(labels, dtype=np.int64),
        )

    def _example_from(self, item: Any, where: str) -> tuple[int, tuple[float, ...], str, int]:
        """``(run_id or -1, numbers, text, label)`` of a record or a ``pathway:new`` payload."""
        if isinstance(item, PathwayRecord):
            # A record is read as a run that has not been logged yet: its priors
            # are the pathway's stats now (decayed to the record's time).
            item.__post_init__()
            pathway = self.pathway_db.find(item.actions)
            prior_freq, prior_myel = 0.0, 0.0
            if pathway is not None:
                prior_freq = float(pathway.frequency)
                prior_myel = pathway.myelination_score * decay_factor(
                    item.ts - pathway.last_activation, self.pathway_db.half_life_days
                )
            return -1, (prior_freq, item.exec_time, item.roi, prior_myel), item.actions, label_of(item.outcome)
        if not isinstance(item, dict):
            raise ValueError(
                f"{where} must be a PathwayRecord or a pathway:new payload dict, got {type(item).__name__}"
            )
        missing = [k for k in ("actions", "exec_time", "roi", "prior_frequency", "prior_myelination")
                   if k not in item]
        if "outcome" not in item and "label" not in item:
            missing.append("outcome")
        if missing:
            raise ValueError(f"{where} is missing {', '.join(missing)}")
        text = check_text(f"{where}.actions", item["actions"], allow_empty=False).strip()
        numbers = (
            check_number(f"{where}.prior_frequency", item["prior_frequency"], minimum=0.0),
            check_number(f"{where}.exec_time", item["exec_time"], minimum=0.0),
            check_number(f"{where}.roi", item["roi"]),
            check_number(f"{where}.prior_myelination", item["prior_myelination"]),
        )
        if "outcome" in item:
            try:
                label = label_of(item["outcome"])
            except ValueError as exc:
                raise ValueError(f"{where}.{exc}") from None
        elif item["label"] in (0, 1) and not isinstance(item["label"], float):
            label = int(item["label"])
        else:
            raise ValueError(f"{where}.label must be 0 or 1, got {item['label']!r}")
        run_id = item.get("run_id")
        run_id = int(run_id) if isinstance(run_id, int) and not isinstance(run_id, bool) else -1
        if len(text) >= events.PAYLOAD_TEXT_LIMIT and text.endswith("\u2026"):
            full = self._full_actions(item.get("pathway_id"))  # the payload clipped it
            text = full or text
        return run_id, numbers, text, label

    def _full_actions(self, pathway_id: Any) -> str | None:
        if not isinstance(pathway_id, int) or isinstance(pathway_id, bool):
            return None
        pathway = self.pathway_db.get(pathway_id)
        return pathway.actions if pathway is not None else None

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
        row = (
            check_number("freq", freq, minimum=0.0),
            check_number("exec_time", exec_time, minimum=0.0),
            check_number("roi", roi),
            check_number("myelination", myelination),
        )
        text = check_text("actions", actions, allow_empty=False, max_len=100_000).strip()
        live = self._live  # one read: a concurrent swap cannot split this prediction
        if live is None:
            return UNTRAINED_PROBABILITY
        X = self.features_of(np.asarray([row], dtype=np.float64), [text], live.family)
        proba = float(live.family.predict_proba(live.estimator, X)[0])
        return min(max(proba, 0.0), 1.0) if math.isfinite(proba) else UNTRAINED_PROBABILITY

    # -- training ----------------------------------------------------------
    def train(
        self, progress: Progress | None = None, cancel: threading.Event | None = None
    ) -> bool:
        """Fit the model on every run in the database; return whether it could.

        Returns ``False`` (and keeps the current model) when there are no runs
        or only one class of outcome. ``progress(fraction, message)`` is called
        as work advances; setting ``cancel`` raises :class:`TrainingCancelled`
        and leaves the live model unchanged.
        """
        _check_hooks(progress, cancel)
        with self._lock:
            started = time.perf_counter()
            _report(progress, 0.0, "reading runs")
            examples = self._load_examples(progress, cancel, (0.0, 0.3))
            if len(np.unique(examples.y)) < 2:
                logger.info(
                    "%s: not training: need runs of both outcomes, have %d runs (%d successes)",
                    self.name, len(examples), int(examples.y.sum()),
                )
                _report(progress, 1.0, "not enough data to train")
                return False
            _check_cancel(cancel)
            _report(progress, 0.35, f"embedding {len(examples)} runs")
            X = self.features_of(examples.numbers, examples.texts)
            _check_cancel(cancel)
            _report(progress, 0.5, f"fitting {self.model_name} on {len(examples)} runs")
            family = self._family
            estimator = family.fit(
                family.build(self.seed), X, examples.y, _within(progress, 0.5, 0.95), cancel
            )
            _check_cancel(cancel)
            self._install(family, estimator, X, examples)
            _report(progress, 0.95, "saving model")
            self.save()
            logger.info(
                "%s: trained %s on %d runs in %.2fs", self.name, self.model_name,
                len(examples), time.perf_counter() - started,
            )
            _report(progress, 1.0, f"trained {self.model_name} on {len(examples)} runs")
            return True

    def _install(self, family: ModelFamily, estimator: Any, X: Any, examples: Examples) -> None:
        """Make a fully trained model live (caller holds the lock)."""
        self._family = family
        self._live = _Live(family, estimator)
        self.n_seen = len(examples)
        self.trained_through_run_id = int(examples.run_ids.max()) if len(examples) else 0
        self.learned_runs.clear()
        self._replay.clear()
        tail = slice(max(0, len(examples) - self._replay.capacity), len(examples))
        self._replay.extend(list(X[tail]), examples.y[tail])
        self._replay_seeded = True
        self._updates_since_save = 0

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
        model already learned are skipped: runs the last full ``train()`` saw
        (``run_id`` <= its last run) and runs an earlier partial update learned
        (:attr:`learned_runs`, saved with the model, so a run delivered again
        after a restart is not learned twice). A record is read as a run not logged yet (its priors are the
        pathway's current stats). How each model learns the update is in
        :mod:`menace.models` (``partial_fit``, or new trees on a bounded replay
        window for the forest); the cost per example never depends on the size
        of the database. Raises ``ValueError`` naming the bad item; then
        nothing is learned.
        """
        if isinstance(record_or_batch, (list, tuple)):
            items, single = list(record_or_batch), False
        else:
            items, single = [record_or_batch], True
        parsed = [
            self._example_from(item, "record" if single else f"batch[{i}]")
            for i, item in enumerate(items)
        ]
        with self._lock:
            fresh, batch_ids = [], set()
            for p in parsed:
                run_id = p[0]
                if run_id < 0:  # a record, not a logged run
                    fresh.append(p)
                elif (
                    run_id > self.trained_through_run_id
                    and run_id not in self.learned_runs
                    and run_id not in batch_ids
                ):
                    batch_ids.add(run_id)
                    fresh.append(p)
            if not fresh:
                return False
            family = self._family
            numbers = np.asarray([p[1] for p in fresh], dtype=np.float64)
            texts = [p[2] for p in fresh]
            y = np.asarray([p[3] for p in fresh], dtype=np.int64)
            X = self.features_of(numbers, texts, family)
            if getattr(family, "needs_replay", False) and not self._replay_seeded:
                self._seed_replay(family, {p[0] for p in fresh})
            self._replay.extend(list(X), y)
            live = self._live
            estimator = family.partial_update(
                live.estimator if live is not None else None, X, y, self._replay, self.seed
            )
            if estimator is None:
                return False
            self._live = _Live(family, estimator)
            self.n_seen += len(y)
            for run_id in batch_ids:
                self.learned_runs.add(run_id)
            self._updates_since_save += 1
            if (
                self.save_every
                and self._updates_since_save >= self.save_every
                and time.monotonic() - self._last_save >= self.save_interval
            ):
                self.save()
            return True

    def _seed_replay(self, family: ModelFamily, batch_ids: set[int]) -> None:
        """Fill the replay window from the newest runs (a bounded read, once per process)."""
        self._replay_seeded = True
        start = max(0, self.pathway_db.count_runs() - self._replay.capacity)
        runs = self.pathway_db.runs(since_id=start, limit=self._replay.capacity)
        runs = [r for r in runs if r["id"] not in batch_ids]  # the batch goes in next
        if not runs:
            return
        numbers = np.asarray(
            [(r["prior_frequency"], r["exec_time"], r["roi"], r["prior_myelination"]) for r in runs],
            dtype=np.float64,
        )
        X = self.features_of(numbers, [r["actions"] for r in runs], family)
        self._replay.extend(list(X), [label_of(r["outcome"]) for r in runs])

    # -- evaluation --------------------------------------------------------
    def _score(
        self,
        family: ModelFamily,
        X: Any,
        y: np.ndarray,
        cv: int,
        test_split: float,
        progress: Progress | None,
        cancel: threading.Event | None,
        span: tuple[float, float],
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """Score fresh copies of ``family``: ``cv`` folds of the training part,
        then a fit on the whole training part scored on the unseen holdout."""
        train_idx, test_idx = holdout_split(y, test_split, self.seed)
        X_train, y_train = X[train_idx], y[train_idx]
        fold_scores = []
        steps = cv + 1
        for i, (fit_idx, valid_idx) in enumerate(stratified_folds(y_train, cv, self.seed)):
            _check_cancel(cancel)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("time budget spent")
            _report(progress, span[0] + (span[1] - span[0]) * i / steps,
                    f"{family.name}: fold {i + 1} of {cv}")
            estimator = family.fit(
                family.build(self.seed), X_train[fit_idx], y_train[fit_idx],
                _within(progress, span[0] + (span[1] - span[0]) * i / steps,
                        span[0] + (span[1] - span[0]) * (i + 1) / steps), cancel,
            )
            proba = family.predict_proba(estimator, X_train[valid_idx])
            fold_scores.append(accuracy(y_train[valid_idx], proba))
        _check_cancel(cancel)
        _report(progress, span[0] + (span[1] - span[0]) * cv / steps, f"{family.name}: holdout")
        estimator = family.fit(
            family.build(self.seed), X_train, y_train,
            _within(progress, span[0] + (span[1] - span[0]) * cv / steps, span[1]), cancel,
        )
        proba = family.predict_proba(estimator, X[test_idx])
        return {
            "cv_score": float(np.mean(fold_scores)),
            "cv_scores": [float(s) for s in fold_scores],
            "holdout_score": accuracy(y[test_idx], proba),
            "holdout_auc": roc_auc(y[test_idx], proba),
            "n_train": int(len(train_idx)),
            "n_holdout": int(len(test_idx)),
        }

    @staticmethod
    def _check_eval_args(cv: Any, test_split: Any) -> tuple[int, float]:
        cv = check_positive_int("cv", cv, minimum=2)
        test_split = check_number("test_split", test_split, minimum=0.0, maximum=1.0)
        if not 0.0 < test_split < 1.0:
            raise ValueError(f"test_split must be between 0 and 1 (exclusive), got {test_split}")
        return cv, test_split

    def evaluate(
        self,
        cv: int = 5,
        test_split: float = 0.2,
        *,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        """Measure the current model family on the current data; the live model is untouched.

        A seeded, stratified ``test_split`` share of the runs is held out; the
        rest is cut into ``cv`` stratified, shuffled folds. ``cv_score`` is the
        mean accuracy over the folds and ``holdout_score`` the accuracy on the
        holdout of a fresh model fitted on the rest (both in [0, 1]);
        ``holdout_auc`` is its ROC AUC. The result (also ``ts``, ``model``,
        ``n_examples``) is appended to :attr:`evaluation_history`, to
        ``persist_path`` if set, and to the Prometheus gauges. Raises
        ``ValueError`` when there are fewer than ``cv + 1`` runs of either
        outcome (the message says how many there are).
        """
        cv, test_split = self._check_eval_args(cv, test_split)
        _check_hooks(progress, cancel)
        _report(progress, 0.0, "reading runs")
        examples = self._load_examples(progress, cancel, (0.0, 0.2))
        check_splittable(examples.y, cv, test_split)
        family = self._family
        X = self.features_of(examples.numbers, examples.texts, family)
        scores = self._score(family, X, examples.y, cv, test_split, progress, cancel, (0.25, 1.0))
        entry = {
            "engine": self.name,
            "model": family.name,
            "ts": time.time(),
            **scores,
            "n_examples": len(examples),
            "cv": cv,
            "test_split": test_split,
            "features": self.features if family.inputs == "features" else "text",
            "seed": self.seed,
        }
        self._record(entry)
        _report(progress, 1.0, f"cv {entry['cv_score']:.3f}, holdout {entry['holdout_score']:.3f}")
        return entry

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
        if isinstance(candidates, str):
            candidates = [candidates]
        try:
            raw = list(candidates)
        except TypeError:
            raise ValueError(f"candidates must be a list of model names, got {candidates!r}") from None
        for c in raw:
            if not isinstance(c, str):
                raise ValueError(
                    f"candidates must be model names from {', '.join(available_models())}; got {c!r}")
        names = list(dict.fromkeys(c.strip().lower() for c in raw))
        if not names:
            raise ValueError("candidates must name at least one model")
        families = [
            self._family_for(n, self.model_params if n.strip().lower() == self._params_model else None)
            for n in names
        ]
        if time_budget is not None:
            time_budget = check_number("time_budget", time_budget, minimum=0.0)
        cv, test_split = self._check_eval_args(cv, test_split)
        _check_hooks(progress, cancel)
        deadline = None if time_budget is None else time.monotonic() + time_budget
        with self._lock:
            _report(progress, 0.0, "reading runs")
            examples = self._load_examples(progress, cancel, (0.0, 0.1))
            check_splittable(examples.y, cv, test_split)
            inputs: dict[str, Any] = {}
            results: dict[str, dict[str, Any]] = {}
            share = 0.8 / len(families)
            for i, family in enumerate(families):
                span = (0.1 + i * share, 0.1 + (i + 1) * share)
                if family.inputs not in inputs:
                    inputs[family.inputs] = self.features_of(examples.numbers, examples.texts, family)
                if i > 0 and deadline is not None and time.monotonic() > deadline:
                    results[family.name] = {"skipped": "time budget spent"}
                    continue
                try:
                    results[family.name] = self._score(
                        family, inputs[family.inputs], examples.y, cv, test_split, progress,
                        cancel, span, deadline if i > 0 else None,
                    )
                except TimeoutError:
                    results[family.name] = {"skipped": "time budget spent"}
            scored = [f for f in families if "cv_score" in results[f.name]]
            best = max(scored, key=lambda f: results[f.name]["cv_score"])  # max keeps the first tie
            _check_cancel(cancel)
            _report(progress, 0.9, f"fitting {best.name} on all {len(examples)} runs")
            X = inputs[best.inputs]
            estimator = best.fit(best.build(self.seed), X, examples.y, _within(progress, 0.9, 0.95), cancel)
            _check_cancel(cancel)
            self._install(best, estimator, X, examples)
            self.save()
            ts = time.time()
            self.last_auto_train = {"best": best.name, "ts": ts, "candidates": results}
            entry = {
                "engine": self.name,
                "model": best.name,
                "ts": ts,
                **{k: v for k, v in results[best.name].items()},
                "n_examples": len(examples),
                "cv": cv,
                "test_split": test_split,
                "features": self.features if best.inputs == "features" else "text",
                "seed": self.seed,
                "source": "auto_train",
                "candidates": results,
            }
            self._record(entry)
            _report(progress, 1.0, f"best model: {best.name}")
            return best.name

    def _record(self, entry: dict[str, Any]) -> None:
        """Keep an evaluation: history, disk, gauges."""
        from . import metrics_exporter

        self.evaluation_history.append(entry)
        metrics_exporter.learning_cv_score.set(entry["cv_score"])
        metrics_exporter.learning_holdout_score.set(entry["holdout_score"])
        if self.persist_path is None:
            return
        line = json.dumps(entry, allow_nan=False, sort_keys=True)
        self.persist_path.parent.mkdir(parents=True, exist_ok=True)
        if self.persist_path.suffix.lower() == ".jsonl":
            with open(self.persist_path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
            return
        from .storage import connect, write_transaction

        conn = connect(self.persist_path)
        try:
            with write_transaction(conn):
                conn.execute(_HISTORY_TABLE)
                conn.execute(
                    "INSERT INTO evaluations(engine, ts, data) VALUES (?, ?, ?)",
                    (self.name, entry["ts"], line),
                )
        finally:
            conn.close()

    def load_history(self) -> list[dict[str, Any]]:
        """This engine's stored evaluations from ``persist_path``, oldest first.

        Entries of other engines sharing the file are left out; an unreadable
        line is logged and skipped. Empty without ``persist_path``.
        """
        path = self.persist_path
        if path is None or not path.exists():
            return []
        entries: list[dict[str, Any]] = []
        if path.suffix.lower() == ".jsonl":
            with open(path, encoding="utf-8") as fh:
                lines = list(enumerate(fh, start=1))
        else:
            from .storage import connect

            conn = connect(path)
            try:
                conn.execute(_HISTORY_TABLE)
                rows = conn.execute("SELECT id, data FROM evaluations ORDER BY id").fetchall()
            finally:
                conn.close()
            lines = [(row[0], row[1]) for row in rows]
        for number, line in lines:
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                logger.warning("%s: skipping unreadable evaluation %s: %s", path, number, exc)
                continue
            if isinstance(entry, dict) and entry.get("engine", self.name) == self.name:
                entries.append(entry)
        return entries

    # -- persistence -------------------------------------------------------
    def model_path(self, model: str | None = None) -> Path | None:
        """Where the model called ``model`` (default: the one in use) is saved."""
        if self.model_dir is None:
            return None
        family = self._family if model is None else get_family(model)
        return self.model_dir / f"{family.name}{family.file_suffix}"

    def _meta(self, family: ModelFamily) -> dict[str, Any]:
        embedder = getattr(self.memory_mgr, "embedder", None) if family.inputs == "features" else None
        return {
            "format": MODEL_FORMAT,
            "engine": self.name,
            "model": family.name,
            "features": self.features if family.inputs == "features" else "text",
            "embedder": getattr(embedder, "name", None),
            "n_features": len(self.feature_names) if family.inputs == "features" else 0,
            "n_seen": int(self.n_seen),
            "trained_through_run_id": int(self.trained_through_run_id),
            "learned_runs": self.learned_runs.ranges(),
            "saved_at": time.time(),
        }

    def save(self) -> Path | None:
        """Write the live model to :meth:`model_path` atomically; return the path.

        ``None`` when untrained or without a model folder. A failed save is
        logged and leaves the previous file in place.
        """
        with self._lock:
            live = self._live
            path = self.model_path(live.family.name) if live is not None else None
            if live is None or path is None:
                return None
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                live.family.save(live.estimator, self._meta(live.family), tmp)
                if tmp.is_dir() and path.is_dir():  # a directory cannot be os.replace'd onto another
                    old = path.with_name(f".{path.name}.{os.getpid()}.old")
                    os.replace(path, old)
                    os.replace(tmp, path)
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    os.replace(tmp, path)
            except Exception:
                logger.exception("%s: could not save model to %s", self.name, path)
                if tmp.is_dir():
                    shutil.rmtree(tmp, ignore_errors=True)
                else:
                    tmp.unlink(missing_ok=True)
                return None
            self._updates_since_save = 0
            self._last_save = time.monotonic()
            return path

    def _load_saved_model(self) -> None:
        path = self.model_path()
        if path is None or not path.exists():
            return
        family = self._family
        try:
            estimator, meta = family.load(path)
        except Exception as exc:
            logger.error(
                "%s: saved model %s cannot be loaded (%s: %s); starting untrained",
                self.name, path, type(exc).__name__, exc,
            )
            return
        expected = self._meta(family)
        for key in ("format", "model", "features", "embedder", "n_features"):
            if meta.get(key) != expected[key]:
                logger.warning(
                    "%s: saved model %s has %s=%r, this engine needs %r; starting untrained",
                    self.name, path, key, meta.get(key), expected[key],
                )
                return
        self._live = _Live(family, estimator)
        self.n_seen = int(meta.get("n_seen", 0))
        self.trained_through_run_id = int(meta.get("trained_through_run_id", 0))
        try:
            self.learned_runs = LearnedRuns(meta.get("learned_runs") or ())
        except (TypeError, ValueError) as exc:  # a damaged list only costs the deduplication
            logger.warning("%s: ignoring the saved list of learned runs (%s)", self.name, exc)
            self.learned_runs = LearnedRuns()
        logger.info("%s: loaded %s model from %s (%d examples)", self.name, family.name, path, self.n_seen)


_HISTORY_TABLE = (
    "CREATE TABLE IF NOT EXISTS evaluations ("
    "id INTEGER PRIMARY KEY AUTOINCREMENT, engine TEXT NOT NULL, ts REAL NOT NULL, data TEXT NOT NULL)"
)
