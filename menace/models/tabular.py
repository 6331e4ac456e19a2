"""Shared base of the scikit-learn families: scaler inside a Pipeline, skops files.

Every tabular estimator is ``Pipeline([("scale", StandardScaler()), ("model", clf)])``,
so the scaling is fitted with the model, saved with it and applied at every
prediction; a model can never see raw features it was not trained on.

Models are saved with skops (no pickle): loading refuses any type that is not
in :data:`TRUSTED_TYPES`, the short explicit list of scikit-learn internals
skops does not trust by default.
"""

from __future__ import annotations

import copy
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from .base import ModelFamily, ReplayBuffer


class _HideTorchInThisThread:
    """Import hook: ``torch`` is not importable from the thread that installed it."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, name, path=None, target=None):
        if threading.get_ident() == self.thread and (name == "torch" or name.startswith("torch.")):
            raise ImportError("torch is hidden while skops.io is imported")
        return None


def _import_skops_io():
    # Importing skops.io walks every scikit-learn module, and one of them
    # (sklearn.externals.array_api_compat.torch) imports torch when installed:
    # 2-3 s and hundreds of MB the tabular models never use. The walk skips a
    # module whose import fails, so torch is hidden from this thread meanwhile.
    hook = None if "torch" in sys.modules else _HideTorchInThisThread()
    if hook is not None:
        sys.meta_path.insert(0, hook)
    try:
        import skops.io
    finally:
        if hook is not None:
            sys.meta_path.remove(hook)
    return skops.io


sio = _import_skops_io()

#: Types a saved model may contain beyond skops' defaults (scikit-learn
#: estimators, numpy arrays, builtins).
TRUSTED_TYPES = frozenset(
    {
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "sklearn.tree._tree.Tree",
    }
)

CLASSES = np.array([0, 1])


class TabularFamily(ModelFamily):
    """A scikit-learn classifier behind a ``StandardScaler`` in one Pipeline."""

    inputs = "features"

    def make_classifier(self, seed: int) -> Any:
        raise NotImplementedError

    def build(self, seed: int) -> Pipeline:
        return Pipeline([("scale", StandardScaler()), ("model", self.make_classifier(seed))])

    def fit(
        self, estimator: Pipeline, X: Any, y: np.ndarray, progress: Any = None, cancel: Any = None
    ) -> Pipeline:
        with warnings.catch_warnings():
            # A capped number of epochs is a deliberate time bound, not an error.
            warnings.simplefilter("ignore", ConvergenceWarning)
            return estimator.fit(X, y)

    def save(self, estimator: Any, meta: dict[str, Any], path: Path) -> None:
        sio.dump({"meta": meta, "estimator": estimator}, str(path))

    def load(self, path: Path) -> tuple[Any, dict[str, Any]]:
        untrusted = sio.get_untrusted_types(file=str(path))
        refused = sorted(set(untrusted) - TRUSTED_TYPES)
        if refused:
            raise ValueError(f"{path} contains types that are not trusted: {', '.join(refused)}")
        data = sio.load(str(path), trusted=list(untrusted))
        if not isinstance(data, dict) or not isinstance(data.get("meta"), dict):
            raise ValueError(f"{path} is not a Menace model file")
        estimator = data.get("estimator")
        if not isinstance(estimator, Pipeline):
            raise ValueError(f"{path} holds {type(estimator).__name__}, not a Pipeline")
        return estimator, data["meta"]


class PartialFitFamily(TabularFamily):
    """Families whose classifier has ``partial_fit``: the update is a copy, partial-fitted.

    The scaler's running mean and variance are updated with the batch first
    (``StandardScaler.partial_fit``), then the classifier takes one
    ``partial_fit`` pass over the scaled batch. Cost: one copy of the model plus
    the batch, independent of how much data came before.
    """

    def partial_update(
        self, estimator: Pipeline | None, X: Any, y: np.ndarray, replay: ReplayBuffer, seed: int
    ) -> Pipeline:
        new = self.build(seed) if estimator is None else copy.deepcopy(estimator)
        scaler, model = new.named_steps["scale"], new.named_steps["model"]
        self.ready_for_partial_fit(model)
        scaler.partial_fit(X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.partial_fit(scaler.transform(X), y, classes=CLASSES)
        return new

    def ready_for_partial_fit(self, model: Any) -> None:
        """Adjust a copy of the classifier before its ``partial_fit`` (default: nothing)."""
