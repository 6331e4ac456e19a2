"""What each consumer really calls on the parts it is given, written down as protocols.

The engine, the coordinator, the run watcher and the workflow scorer depend
on these, not on the SQLite classes: :class:`~menace.neuroplasticity.PathwayDB`
and :class:`~menace.menace_memory_manager.MenaceMemoryManager` satisfy them
today, and another backend (PostgreSQL) only has to provide the same methods.
A test can hand any consumer a small fake.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .progress import Progress


@runtime_checkable
class PathwayStore(Protocol):
    """The pathway store as the learning side reads it."""

    #: Where the store lives (a file path, a database URL, or ``":memory:"``).
    path: str
    #: Half-life of myelination, days.
    half_life_days: float

    def runs(self, pathway_id: int | None = None, *, since_id: int = 0, limit: int | None = None) -> list[dict]:
        """Stored runs with an id above ``since_id``, oldest first (rows as dicts)."""
        ...

    def count_runs(self) -> int: ...

    def newest_run_id(self) -> int:
        """The id of the newest run (0 when empty)."""
        ...

    def logged_here(self, run_id: int) -> bool:
        """Whether this store object wrote the run (and so publishes its event itself)."""
        ...

    def logged_here_many(self, run_ids: list[int]) -> list[bool]:
        """:meth:`logged_here` of each id."""
        ...

    def run_events(self, since_id: int = 0, limit: int = 2000) -> list[dict[str, Any]]:
        """The ``pathway:new`` payloads of the runs after ``since_id``, oldest first, marked external."""
        ...

    def find(self, actions: str) -> Any | None:
        """The ``Pathway`` with exactly these actions, or ``None``."""
        ...

    def get(self, pathway_id: int) -> Any | None:
        """The ``Pathway`` with this id, or ``None``."""
        ...


class Embedder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray: ...


@runtime_checkable
class EmbeddingSource(Protocol):
    """Embeds text, with a cache (the memory manager)."""

    embedder: Embedder

    def embed_many(self, texts: list[str]) -> np.ndarray:
        """One row per text (float32, ``embedder.dim`` columns)."""
        ...


@runtime_checkable
class MemoryStore(Protocol):
    """Versioned text memory as :class:`~menace.gpt_memory.GPTMemory` uses it
    (:class:`~menace.menace_memory_manager.MenaceMemoryManager`, or its PostgreSQL twin)."""

    def store(self, key: str, data: Any, tags: Iterable[str] | str | None = None) -> int: ...

    def query(self, key: str, limit: int = 10) -> list[Any]: ...

    def latest(self, limit: int = 100, offset: int = 0, key_prefix: str | None = None) -> list[Any]: ...

    def search(self, text: str, limit: int = 20) -> list[Any]: ...

    def search_by_tag(self, tag: str | Iterable[str], limit: int = 100, *, key_prefix: str | None = None) -> list[Any]: ...

    def delete(self, memory_ids: Iterable[int]) -> int: ...


@runtime_checkable
class EventBus(Protocol):
    """Publish and subscribe (the :class:`~menace.unified_event_bus.UnifiedEventBus`)."""

    def subscribe(self, topic: str, callback: Callable[[str, dict], Any]) -> None: ...

    def unsubscribe(self, topic: str, callback: Callable[[str, dict], Any]) -> None: ...

    def publish(self, topic: str, payload: dict[str, Any]) -> int: ...


@runtime_checkable
class BatchPublisher(Protocol):
    """A bus that journals many events of one topic in one transaction (``publish_many``)."""

    def publish_many(self, topic: str, payloads: list[dict[str, Any]]) -> list[int]: ...


@runtime_checkable
class Learner(Protocol):
    """A learning engine as the coordinator drives it (:class:`~menace.learning_engine.LearningEngine`)."""

    name: str
    n_seen: int
    last_auto_train: dict[str, Any] | None
    #: The store it learns from and the source of its embeddings (``None`` for text models).
    pathway_db: PathwayStore
    memory_mgr: EmbeddingSource | None

    @property
    def model_name(self) -> str: ...

    @property
    def is_trained(self) -> bool: ...

    @property
    def uses_embeddings(self) -> bool:
        """Whether the features embed the action text (text-only models do not)."""
        ...

    def has_learned(self, run_id: int) -> bool:
        """Whether the live model already learned this run (by a full training or an update)."""
        ...

    def partial_train(self, record_or_batch: Any) -> bool: ...

    def train(self, progress: Progress | None = None, cancel: threading.Event | None = None) -> bool: ...

    def evaluate(
        self, cv: int = 5, test_split: float = 0.2, *, progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]: ...

    def auto_train(
        self, candidates: Iterable[str], *, time_budget: float | None = None,
        progress: Progress | None = None, cancel: threading.Event | None = None,
    ) -> str: ...

    def predict_success(self, freq: float, exec_time: float, roi: float, myelination: float, actions: str) -> float: ...

    def save(self) -> Path | None: ...

    def newest_learned_run_id(self) -> int: ...

    def prequential_snapshot(self) -> dict[str, Any] | None:
        """The live model's test-then-train figures (``engine``, ``model``, ``ts``...), or ``None``."""
        ...

    def pop_drift(self) -> Any | None:
        """The drift found since the last call (a ``menace.prequential.Drift``), or ``None``."""
        ...
