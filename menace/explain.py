"""Why a prediction came out as it did, and predictions for many pathways at once.

Both work through the engine's public API only (``live_model``,
``features_of``, ``feature_names``, ``model_name``): nothing is retrained and
the live model is read once per call, so a model swapped meanwhile cannot
split an answer.

**How the contributions are computed** (:func:`explain`): by occlusion, i.e.
"what would the model say if this input were ordinary, or absent?"

* *Numbers* (tabular models: ``logreg``, ``nn``, ``rf``): each of
  ``prior_frequency``, ``exec_time``, ``roi`` and ``prior_myelination`` is
  replaced by its mean over the runs the model was trained on (the mean its
  own ``StandardScaler`` learned) and the prediction is made again.
* *Steps* (every model, text models included): each step of the action text
  is left out (``fetch->parse->store`` without ``parse`` is
  ``fetch->store``) and the prediction is made again. For a tabular model
  that moves the embedding and the step-order columns together.

A contribution is ``P(as given) - P(with that input replaced)``, in
probability (-1..1): positive means the input pushed the prediction up. The
effects of inputs overlap, so the contributions do not add up to the
prediction (unlike SHAP values); they say which inputs mattered for this one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .client_interface import Contribution, Explanation, Prediction
from .errors import FieldError
from .validation import check_number, check_text

#: The four number columns of a feature row, in order, and how a person reads them.
NUMBER_FEATURES = (
    ("prior_frequency", "runs before"),
    ("exec_time", "exec time (s)"),
    ("roi", "ROI"),
    ("prior_myelination", "myelination"),
)
#: Steps of an action text are separated by this (as in :mod:`menace.features`).
STEP_SEPARATOR = "->"
#: Steps explained at most (the rest are left as they are).
MAX_STEPS = 30
#: Queries one :func:`predict_many` call accepts at most.
MAX_QUERIES = 10_000
#: What an engine without a model answers (see ``LearningEngine.predict_success``).
UNTRAINED_PROBABILITY = 0.5

METHOD = (
    "Occlusion: each number is set to its average over the training runs, and each step is "
    "left out of the action text, then the model predicts again; a contribution is the "
    "probability as given minus the probability without that input (+: it pushed the "
    "prediction up). Effects overlap, so they do not add up to the prediction."
)
TEXT_METHOD = (
    "Occlusion: each step is left out of the action text and the model predicts again; a "
    "contribution is the probability as given minus the probability without that step "
    "(+: it pushed the prediction up). This text model reads the action text only."
)


def check_query(freq: Any, exec_time: Any, roi: Any, myelination: Any, actions: Any,
                where: str = "") -> tuple[tuple[float, float, float, float], str]:
    """The checked inputs of one prediction; a :class:`FieldError` names ``<where>field``."""
    numbers = (
        check_number(f"{where}freq", freq, minimum=0.0),
        check_number(f"{where}exec_time", exec_time, minimum=0.0),
        check_number(f"{where}roi", roi),
        check_number(f"{where}myelination", myelination),
    )
    return numbers, check_text(f"{where}actions", actions, allow_empty=False, max_len=100_000).strip()


def _probabilities(engine: Any, live: Any, numbers: np.ndarray, texts: list[str]) -> np.ndarray:
    X = engine.features_of(numbers, texts, live.family)
    proba = np.asarray(live.family.predict_proba(live.estimator, X), dtype=np.float64).reshape(-1)
    proba = np.where(np.isfinite(proba), proba, UNTRAINED_PROBABILITY)
    return np.clip(proba, 0.0, 1.0)


def predict_many(engine: Any, queries: Sequence[Mapping[str, Any]]) -> list[Prediction]:
    """One :class:`Prediction` per query, computed in one batch.

    Each query is a mapping with ``freq``, ``exec_time``, ``roi``,
    ``myelination`` and ``actions`` (the arguments of
    ``LearningEngine.predict_success``). A bad query raises
    :class:`FieldError` naming ``queries[i].field``; at most
    :data:`MAX_QUERIES` a call.
    """
    if isinstance(queries, Mapping | str | bytes) or not isinstance(queries, Sequence):
        raise FieldError("queries", f"queries must be a list of mappings, got {type(queries).__name__}")
    if len(queries) > MAX_QUERIES:
        raise FieldError("queries", f"queries must hold at most {MAX_QUERIES:,} items, got {len(queries):,}")
    rows, texts = [], []
    for i, query in enumerate(queries):
        if not isinstance(query, Mapping):
            raise FieldError(f"queries[{i}]", f"queries[{i}] must be a mapping, got {type(query).__name__}")
        missing = [k for k in ("freq", "exec_time", "roi", "myelination", "actions") if k not in query]
        if missing:
            raise FieldError(f"queries[{i}].{missing[0]}", f"queries[{i}] is missing {', '.join(missing)}")
        numbers, text = check_query(query["freq"], query["exec_time"], query["roi"], query["myelination"],
                                    query["actions"], f"queries[{i}].")
        rows.append(numbers)
        texts.append(text)
    live = engine.live_model  # one read: a swap meanwhile cannot split the batch
    model = live.family.name if live is not None else engine.model_name
    if live is None or not rows:
        return [Prediction(UNTRAINED_PROBABILITY, model, False) for _ in rows]
    proba = _probabilities(engine, live, np.asarray(rows, dtype=np.float64), texts)
    return [Prediction(float(p), model, True) for p in proba]


def steps_of(text: str) -> list[str]:
    """The steps of an action text as written (trimmed), in order."""
    return [part.strip() for part in text.split(STEP_SEPARATOR) if part.strip()]


def _number_means(engine: Any, live: Any) -> np.ndarray | None:
    """The training means of the four number columns, if the model keeps them (its scaler)."""
    if live.family.inputs != "features" or list(engine.feature_names[:4]) != [n for n, _ in NUMBER_FEATURES]:
        return None
    steps = getattr(live.estimator, "named_steps", None)  # a scikit-learn Pipeline's parts
    scaler = steps.get("scale") if isinstance(steps, Mapping) else None
    mean = getattr(scaler, "mean_", None)
    if mean is None or len(mean) < 4 or not np.all(np.isfinite(mean[:4])):
        return None
    return np.asarray(mean[:4], dtype=np.float64)


def _variants(numbers: tuple, text: str, means: np.ndarray | None) -> tuple[list, list, list]:
    """The rows to predict: as given first, then one per occluded input, with a Contribution stub each."""
    rows, texts, stubs = [numbers], [text], []
    if means is not None:
        for i, (name, label) in enumerate(NUMBER_FEATURES):
            occluded = list(numbers)
            occluded[i] = float(means[i])
            rows.append(tuple(occluded))
            texts.append(text)
            stubs.append((name, label, "feature", numbers[i], float(means[i])))
    steps = steps_of(text)
    if len(steps) > 1:
        for i, step in enumerate(steps[:MAX_STEPS]):
            rows.append(numbers)
            texts.append(STEP_SEPARATOR.join(steps[:i] + steps[i + 1 :]))
            stubs.append((f"step {i + 1}", step, "step", step, None))
    return rows, texts, stubs


def explain(engine: Any, freq: Any, exec_time: Any, roi: Any, myelination: Any, actions: Any) -> Explanation:
    """The prediction for one run and what pushed it up or down (see the module doc).

    Arguments as ``LearningEngine.predict_success`` (bad ones raise
    :class:`FieldError` naming them). Contributions come sorted by size,
    largest first; an untrained engine gives none.
    """
    numbers, text = check_query(freq, exec_time, roi, myelination, actions)
    live = engine.live_model
    if live is None:
        return Explanation(UNTRAINED_PROBABILITY, engine.model_name, False, (), "No model has been trained yet.")
    means = _number_means(engine, live)
    rows, texts, stubs = _variants(numbers, text, means)
    proba = _probabilities(engine, live, np.asarray(rows, dtype=np.float64), texts)
    given = float(proba[0])
    contributions = [
        Contribution(name=name, label=label, kind=kind, value=value, reference=reference,
                     effect=given - float(p))
        for (name, label, kind, value, reference), p in zip(stubs, proba[1:], strict=True)
    ]
    contributions.sort(key=lambda c: -abs(c.effect) if math.isfinite(c.effect) else 0.0)
    method = METHOD if live.family.inputs == "features" else TEXT_METHOD
    if live.family.inputs == "features" and means is None:
        method += " (This model keeps no training means, so only steps are shown.)"
    return Explanation(given, live.family.name, True, tuple(contributions), method)
