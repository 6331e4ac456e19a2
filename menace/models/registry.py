"""The model menu: name -> family, imported lazily.

Families are looked up by dotted path and imported only when asked for, so the
menu can list ``transformer`` without importing torch, and a text-only family
can run without scikit-learn importable.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from typing import Any

from ..validation import check_name
from .base import ModelFamily

_REGISTRY: dict[str, str] = {
    "logreg": "menace.models.logreg:LogisticRegressionFamily",
    "nn": "menace.models.nn:NeuralNetworkFamily",
    "rf": "menace.models.rf:RandomForestFamily",
    "transformer": "menace.models.transformer:TransformerFamily",
    "bert": "menace.models.transformer:BertFamily",
}
_lock = threading.Lock()


def available_models() -> list[str]:
    """Every model name the engine accepts, sorted."""
    with _lock:
        return sorted(_REGISTRY)


def register(name: str, target: str) -> None:
    """Add or replace a family: ``target`` is ``"package.module:ClassName"``."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    name = check_name("name", name)  # the saved model's file name: no path separators
    if not isinstance(target, str) or ":" not in target:
        raise ValueError(f"target must look like 'package.module:ClassName', got {target!r}")
    with _lock:
        _REGISTRY[name.strip().lower()] = target


def get_family(name: str, **params: Any) -> ModelFamily:
    """A new instance of the family called ``name``, made with ``params`` (if any).

    Raises ``ValueError`` listing the valid names for an unknown one, and for
    ``params`` the family does not take.
    """
    key = name.strip().lower() if isinstance(name, str) else None
    with _lock:
        target = _REGISTRY.get(key) if key else None
        valid = ", ".join(sorted(_REGISTRY))
    if target is None:
        raise ValueError(f"model must be one of {valid}; got {name!r}")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        family = cls(**params)
    except TypeError as exc:
        if not inspect.signature(cls).parameters:
            raise ValueError(f"model {key!r} takes no model_params; got {sorted(params)}") from None
        raise ValueError(f"model_params {sorted(params)} do not suit model {key!r}: {exc}") from None
    family.name = key
    return family
