"""The one feature pipeline: from stored runs, ``pathway:new`` payloads or records to model input.

**Example unit.** One logged *run* (a row of ``PathwayDB.runs``), not a
pathway: a pathway that ran 50 times is 50 examples. Its label is
:func:`menace.labels.label_of` of the run's outcome.

**Features** (:meth:`FeaturePipeline.transform`, used by ``train``,
``partial_train``, ``predict_success`` and ``evaluate`` alike), in this
column order:

0. ``prior_frequency``: how many times the pathway had run *before* this run;
1. ``exec_time``: this run's execution time in seconds;
2. ``roi``: this run's return on investment;
3. ``prior_myelination``: the pathway's myelination score just before this
   run (decayed to the run's time), so it never counts this run's outcome;
4. ``embedding_mean``: the mean of the action text's embedding
   (``MenaceMemoryManager.embed``, cached on disk);
5. ... ``4 + dim``: the whole embedding vector of the action text (256
   numbers with the hashing embedder, 384 with MiniLM);
6. ``order_0`` ... ``order_383``: what the embedding cannot see, the order of
   the steps (:func:`order_vector`). An embedding of "run_tests->deploy" and of
   "deploy->run_tests" is a bag of the same words; these columns hash, with a
   sign, each step and each ordered pair of steps however far apart
   (``run_tests<<deploy``), so a linear model can weigh "tests before deploy"
   apart from "tests after deploy". (Adding direct successions and the first
   and last step made unseen-pathway accuracy worse on ``bench/quality.py``'s
   order generator: more columns, more collisions, no more signal.)

``features="full"`` (the default) is all of these; ``"embedding"`` stops
after the embedding (the feature set before order was added); ``"seed"``
keeps only the first five columns.

Nothing in a row is known only after the run's outcome, so there is no label
leakage. Text models (``transformer`` / ``bert``) take the action text alone:
their input is an object array of texts.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from . import events
from .errors import FieldError
from .labels import label_of
from .models import ModelFamily
from .neuroplasticity import PathwayRecord, decay_factor
from .progress import Progress, check_cancel, report
from .protocols import EmbeddingSource, PathwayStore
from .validation import MAX_ABS, MAX_SECONDS, check_id, check_number, check_text

SEED_FEATURES = ("prior_frequency", "exec_time", "roi", "prior_myelination", "embedding_mean")
FEATURE_SETS = ("full", "embedding", "seed")
#: Texts whose feature columns a pipeline keeps in memory (about 5 KB each with the hashing
#: embedder, 6 KB with MiniLM).
TEXT_BLOCK_CACHE = 4096
#: Columns of the order features.
ORDER_DIM = 384
#: Steps of an action text are separated by this (as workflow plans join them).
STEP_SEPARATOR = "->"
#: Ordered pairs are taken among the first this many steps (pairs grow with its square).
MAX_PAIRED_STEPS = 32
#: Runs read from the store per query while loading.
PAGE = 20_000

#: One example: ``(run id or -1 for a record not logged, numbers, action text, label)``.
Example = tuple[int, tuple[float, float, float, float], str, int]


@dataclass
class Examples:
    """Training examples, one per run, in logged order."""

    run_ids: np.ndarray  # int64; -1 for a record that is not in the database
    numbers: np.ndarray  # float64 (n, 4): prior_frequency, exec_time, roi, prior_myelination
    texts: list[str]
    y: np.ndarray  # int64 labels, see menace.labels

    def __len__(self) -> int:
        return len(self.y)

    @classmethod
    def from_runs(cls, runs: Iterable[dict[str, Any]]) -> Examples:
        """Examples of stored runs (rows of ``PathwayDB.runs``)."""
        ids, numbers, texts, labels = [], [], [], []
        for run in runs:
            ids.append(run["id"])
            numbers.append((run["prior_frequency"], run["exec_time"], run["roi"], run["prior_myelination"]))
            texts.append(run["actions"])
            labels.append(label_of(run["outcome"]))
        return cls(
            run_ids=np.asarray(ids, dtype=np.int64),
            numbers=np.asarray(numbers, dtype=np.float64).reshape(-1, 4),
            texts=texts,
            y=np.asarray(labels, dtype=np.int64),
        )

    @classmethod
    def concat(cls, parts: list[Examples]) -> Examples:
        if not parts:
            return cls.from_runs(())
        return cls(
            run_ids=np.concatenate([p.run_ids for p in parts]),
            numbers=np.concatenate([p.numbers for p in parts]),
            texts=[t for p in parts for t in p.texts],
            y=np.concatenate([p.y for p in parts]),
        )


def steps_of(text: str) -> list[str]:
    """The steps of an action text: split on ``->``, trimmed, lower-cased, inner spaces folded."""
    return [" ".join(part.lower().split()) for part in text.split(STEP_SEPARATOR) if part.strip()]


def _hashed(token: str) -> tuple[int, float]:
    h = zlib.crc32(token.encode("utf-8"))
    return h % ORDER_DIM, 1.0 if h & 0x80000000 else -1.0


@lru_cache(maxsize=50_000)
def order_vector(text: str) -> np.ndarray:
    """The order features of an action text: ``ORDER_DIM`` signed hash counts.

    Counts, not normalised: a pair's weight must not depend on how many
    other steps the pathway has (the scaler in each model's pipeline scales
    the columns).

    Tokens: each step (``s:x``) and each ordered pair (``a<<b``, among the
    first :data:`MAX_PAIRED_STEPS` steps). Deterministic across processes
    (CRC-32); cached per text. The returned array is shared: do not change it.
    """
    steps = steps_of(text)
    vector = np.zeros(ORDER_DIM, dtype=np.float64)
    if not steps:
        vector.setflags(write=False)
        return vector
    tokens = [f"s:{s}" for s in steps]
    paired = steps[:MAX_PAIRED_STEPS]
    tokens += [f"{a}<<{b}" for i, a in enumerate(paired) for b in paired[i + 1 :]]
    for token in tokens:
        index, sign = _hashed(token)
        vector[index] += sign
    vector.setflags(write=False)
    return vector


def order_matrix(texts: list[str]) -> np.ndarray:
    """:func:`order_vector` of each text, one row each."""
    if not texts:
        return np.zeros((0, ORDER_DIM), dtype=np.float64)
    return np.vstack([order_vector(t) for t in texts])


class FeaturePipeline:
    """Turns runs into model input for one engine (see the module doc).

    Args:
        store: the pathway store (records are read as runs not logged yet: their
            priors are the pathway's current stats).
        memory: embeds the action text (``embed_many``; its ``embedder.dim``).
        features: ``"full"`` or ``"seed"``.
    """

    def __init__(self, store: PathwayStore, memory: EmbeddingSource | None, features: str = "full") -> None:
        if features not in FEATURE_SETS:
            raise FieldError("features", f"features must be one of {', '.join(FEATURE_SETS)}; got {features!r}")
        self.store = store
        self.memory = memory
        self.features = features
        self._blocks: dict[str, np.ndarray] = {}  # text -> its columns (see _text_blocks)
        self._blocks_embedder: str | None = None

    def embedding_dim(self) -> int:
        return int(self.memory.embedder.dim) if self.memory is not None else 0

    def names(self, family: ModelFamily) -> list[str]:
        """Column names of the feature rows, in order (empty for text models)."""
        if family.inputs == "text":
            return []
        names = list(SEED_FEATURES)
        if self.features in ("full", "embedding"):
            names += [f"embedding_{i}" for i in range(self.embedding_dim())]
        if self.features == "full":
            names += [f"order_{i}" for i in range(ORDER_DIM)]
        return names

    def describe(self, family: ModelFamily) -> str:
        """``"full"``, ``"seed"`` or ``"text"``: what ``family`` is fed, as saved with a model."""
        return self.features if family.inputs == "features" else "text"

    def transform(self, numbers: np.ndarray, texts: list[str], family: ModelFamily) -> Any:
        """The model input for runs: a float matrix, or for text models an object array of texts.

        ``numbers`` is ``(n, 4)``: prior_frequency, exec_time, roi, prior_myelination.
        """
        if family.inputs == "text":
            return np.asarray(texts, dtype=object)
        if not len(texts):
            return np.zeros((0, len(self.names(family))), dtype=np.float64)
        rows: dict[str, int] = {}
        index = [rows.setdefault(t, len(rows)) for t in texts]  # each distinct text once
        blocks = self._text_blocks(list(rows))
        X = np.empty((len(index), 4 + blocks.shape[1]), dtype=np.float64)
        X[:, :4] = numbers
        X[:, 4:] = blocks[index]
        return X

    def _text_blocks(self, texts: list[str]) -> np.ndarray:
        """The columns a text decides (embedding mean, embedding, order), one row per text.

        A run's text repeats (a pathway runs many times), so the rows of the last
        :data:`TEXT_BLOCK_CACHE` texts are kept: a live update then costs a dict
        lookup per run instead of hashing each text for the embedding cache and
        stacking its vectors (a sixth of the service's time at 15,000 runs/s).
        """
        embedder = getattr(getattr(self.memory, "embedder", None), "name", None)
        if embedder != self._blocks_embedder:  # another embedder: other vectors
            self._blocks, self._blocks_embedder = {}, embedder
        cache = self._blocks  # another thread may replace it meanwhile: this call keeps its own
        found = {t: row for t in texts if (row := cache.get(t)) is not None}
        missing = [t for t in texts if t not in found]
        if missing:
            embeddings = self.memory.embed_many(missing)
            parts = [embeddings.mean(axis=1, dtype=np.float64)[:, None]]
            if self.features != "seed":
                parts.append(embeddings.astype(np.float64))
            if self.features == "full":
                parts.append(order_matrix(missing))
            new = np.hstack(parts)
            if len(missing) <= TEXT_BLOCK_CACHE:  # a full training's many texts are not kept
                if len(cache) + len(missing) > TEXT_BLOCK_CACHE:
                    cache = self._blocks = {}
                for text, row in zip(missing, new, strict=True):
                    found[text] = cache[text] = row
            else:
                found.update(zip(missing, new, strict=True))
        return np.stack([found[t] for t in texts])

    def load(
        self,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        span: tuple[float, float] = (0.0, 0.3),
    ) -> Examples:
        """Every run in the store, read in pages, in logged order."""
        total = max(self.store.count_runs(), 1)
        parts: list[Examples] = []
        read = 0
        last = 0
        while True:
            check_cancel(cancel)
            page = self.store.runs(since_id=last, limit=PAGE)
            if not page:
                break
            parts.append(Examples.from_runs(page))
            read += len(page)
            last = page[-1]["id"]
            report(progress, span[0] + (span[1] - span[0]) * min(read / total, 1.0), f"read {read} runs")
        return Examples.concat(parts)

    def recent(self, count: int, exclude: set[int] = frozenset()) -> Examples:
        """The newest ``count`` runs (a bounded read), without the ids in ``exclude``."""
        start = max(0, self.store.count_runs() - count)
        runs = self.store.runs(since_id=start, limit=count)
        return Examples.from_runs(r for r in runs if r["id"] not in exclude)

    # -- one example from a payload or a record -----------------------------------------
    def example(self, item: Any, where: str) -> Example:
        """One example of a :class:`PathwayRecord` or a ``pathway:new`` payload.

        Raises :class:`~menace.errors.FieldError` naming ``where`` and the field.
        """
        if isinstance(item, PathwayRecord):
            return self._record_example(item)
        if type(item) is events.CheckedPayload:  # a store built it from checked values
            return self._checked_example(item)
        if not isinstance(item, dict):
            raise FieldError(
                where, f"{where} must be a PathwayRecord or a pathway:new payload dict, got {type(item).__name__}"
            )
        try:
            label = events.example_label(item)
        except FieldError as exc:
            raise FieldError(f"{where}.{exc.field}", f"{where}.{exc}") from None
        text = check_text(f"{where}.actions", item["actions"], allow_empty=False).strip()
        numbers = (
            float(item["prior_frequency"]), float(item["exec_time"]), float(item["roi"]),
            float(item["prior_myelination"]),
        )
        run_id = item.get("run_id")
        if run_id is None:
            run_id = -1  # a run not logged (yet): nothing to deduplicate
        else:
            run_id = check_id(f"{where}.run_id", run_id)  # beyond SQLite's integers: refused
        if events.is_clipped(text):
            text = self._full_actions(item.get("pathway_id")) or text  # the payload clipped it
        return run_id, numbers, text, label

    def _checked_example(self, item: dict) -> Example:
        text = item["actions"]
        if events.is_clipped(text):
            text = self._full_actions(item["pathway_id"]) or text
        numbers = (float(item["prior_frequency"]), item["exec_time"], item["roi"], item["prior_myelination"])
        return item["run_id"], numbers, text, item["label"]

    def _record_example(self, record: PathwayRecord) -> Example:
        # A record is read as a run that has not been logged yet: its priors
        # are the pathway's stats now (decayed to the record's time).
        record.__post_init__()
        pathway = self.store.find(record.actions)
        prior_freq, prior_myel = 0.0, 0.0
        if pathway is not None:
            prior_freq = float(pathway.frequency)
            prior_myel = pathway.myelination_score * decay_factor(
                record.ts - pathway.last_activation, self.store.half_life_days
            )
        numbers = (prior_freq, record.exec_time, record.roi, prior_myel)
        return -1, numbers, record.actions, label_of(record.outcome)

    def _full_actions(self, pathway_id: Any) -> str | None:
        if type(pathway_id) is not int:
            return None
        pathway = self.store.get(pathway_id)
        return pathway.actions if pathway is not None else None

    @staticmethod
    def query_row(freq: Any, exec_time: Any, roi: Any, myelination: Any, actions: Any) -> tuple[tuple, str]:
        """The checked inputs of ``predict_success``: the four numbers and the action text."""
        row = (
            check_number("freq", freq, minimum=0.0, maximum=MAX_ABS),
            check_number("exec_time", exec_time, minimum=0.0, maximum=MAX_SECONDS),
            check_number("roi", roi, minimum=-MAX_ABS, maximum=MAX_ABS),
            check_number("myelination", myelination, minimum=-MAX_ABS, maximum=MAX_ABS),
        )
        return row, check_text("actions", actions, allow_empty=False, max_len=100_000).strip()
