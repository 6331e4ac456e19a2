"""What a model family is: the contract between the engine and one model.

The engine never touches a concrete estimator class. It asks a family for a
fresh estimator, fits it, updates it incrementally, scores it and saves it, all
through this interface, so a new family (the transformer of issue 4, say) only
has to subclass :class:`ModelFamily` and register its name in
:mod:`menace.models.registry`.

Inputs come in two kinds (``ModelFamily.inputs``):

* ``"features"``: a float matrix, one row per run, built by the engine's one
  feature pipeline (see :mod:`menace.learning_engine`);
* ``"text"``: a 1-D object array of action texts, one per run; the family
  does its own text processing (no scikit-learn needed).

Labels are always a 0/1 int array (the rule in :mod:`menace.labels`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np


class ReplayBuffer:
    """The most recent ``capacity`` examples ``(x, label)`` seen by the engine.

    Families without ``partial_fit`` learn a partial update by a bounded refit on
    this window, so the cost of an update never depends on the database size.
    """

    def __init__(self, capacity: int = 2000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._items: deque[tuple[Any, int]] = deque(maxlen=capacity)

    def extend(self, xs: Iterable[Any], ys: Iterable[int]) -> None:
        for x, y in zip(xs, ys, strict=True):
            self._items.append((x, int(y)))

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def arrays(self, inputs: str = "features") -> tuple[np.ndarray, np.ndarray]:
        """The window as ``(X, y)``: a float matrix, or an object array of texts."""
        xs = [x for x, _ in self._items]
        ys = np.fromiter((y for _, y in self._items), dtype=np.int64, count=len(self._items))
        if inputs == "text":
            return np.asarray(xs, dtype=object), ys
        return (np.vstack(xs) if xs else np.zeros((0, 0))), ys


class ModelFamily:
    """One entry of the model menu.

    Subclasses set :attr:`name`, :attr:`inputs`, :attr:`description` and
    :attr:`incremental` (a one-line account of how :meth:`partial_update`
    learns), and implement :meth:`build`. The defaults of the other methods
    suit scikit-learn-like estimators.
    """

    name: str = ""
    inputs: str = "features"  # "features" or "text"
    description: str = ""
    incremental: str = ""
    #: Appended to ``<model_dir>/<name>`` to make the saved model's path.
    file_suffix: str = ".skops"
    #: True if :meth:`save` writes a directory (saved as versions, see
    #: :mod:`menace.model_versions`) rather than one file.
    saves_directory: bool = False
    #: True if :meth:`partial_update` learns from the replay window (filled from
    #: the newest runs after a restart).
    needs_replay: bool = False

    def check_available(self) -> None:
        """Raise a clear error if this family cannot run here (missing extra, say)."""

    def build(self, seed: int) -> Any:
        """A fresh, unfitted estimator (``fit(X, y)``, ``predict_proba(X)``)."""
        raise NotImplementedError

    def fit(
        self, estimator: Any, X: Any, y: np.ndarray, progress: Any = None, cancel: Any = None
    ) -> Any:
        """Fit ``estimator`` on all of ``(X, y)`` and return it.

        Long fits (the transformer) call ``progress(fraction 0..1, message)`` and
        raise ``TrainingCancelled`` once the ``cancel`` event is set; quick ones
        may ignore both.
        """
        return estimator.fit(X, y)

    def partial_update(
        self, estimator: Any | None, X: Any, y: np.ndarray, replay: ReplayBuffer, seed: int
    ) -> Any | None:
        """Learn the batch ``(X, y)`` and return the updated estimator.

        ``estimator`` is the live model (``None`` before any training) and must
        NOT be changed: predictions may be running on it in another thread.
        Return a new object (a copy updated, or a new one), or ``None`` when the
        batch cannot be learned yet (e.g. a single class and no model). The
        batch is already in ``replay`` when this is called.
        """
        raise NotImplementedError

    def predict_proba(self, estimator: Any, X: Any) -> np.ndarray:
        """Probability of success (label 1) for each row, shape ``(n,)``."""
        proba = estimator.predict_proba(X)
        classes = list(getattr(estimator, "classes_", [0, 1]))
        if 1 not in classes:
            return np.zeros(len(proba))
        return np.asarray(proba[:, classes.index(1)], dtype=float)

    def save(self, estimator: Any, meta: dict[str, Any], path: Path) -> None:
        """Write ``estimator`` and the JSON-able ``meta`` to ``path`` (a new file)."""
        raise NotImplementedError

    def load(self, path: Path) -> tuple[Any, dict[str, Any]]:
        """Read back what :meth:`save` wrote; raise on anything unexpected."""
        raise NotImplementedError
