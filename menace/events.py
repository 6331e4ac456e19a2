"""Every bus topic and the shape of its payload, in one place: one :class:`TopicSpec` each.

A subscriber is called as ``callback(topic, payload)``. Payloads are
JSON-serialisable dicts; each carries the id of what it announces and ``ts``
(seconds since the epoch, UTC). Each topic's spec says which way it flows
(``input``: a store committed a record; ``output``: a result of learning or
of the service), builds the payload (:meth:`TopicSpec.build`), checks one
(:meth:`TopicSpec.validate`, a :class:`~menace.errors.FieldError` naming the
field) and describes one in a line (:meth:`TopicSpec.summarise`). Producers,
the coordinator, the engine and the monitors all go through these specs:
:func:`spec` finds one by name, :data:`TOPICS` lists them.

Input topics (a store commits, then publishes):

``pathway:new``  from :meth:`menace.neuroplasticity.PathwayDB.log`
    ``pathway_id`` int, ``run_id`` int, ``ts`` float,
    the record: ``actions`` str, ``inputs`` str, ``outputs`` str,
    ``exec_time`` float (seconds), ``resources`` str, ``outcome`` str
    (``SUCCESS`` | ``PARTIAL_SUCCESS`` | ``FAILURE``), ``roi`` float,
    ``label`` int (0/1, see :mod:`menace.labels`),
    the leakage-free features known before this run:
    ``prior_frequency`` int, ``prior_myelination`` float,
    and ``stats``: the pathway after this run (``frequency``, ``success_rate``,
    ``avg_exec_time``, ``avg_roi``, ``myelination_score``, ``last_activation``).
    ``external`` true when another process committed the run and the
    service's :class:`~menace.run_watcher.RunWatcher` announced it.

``memory:new``  from :meth:`menace.menace_memory_manager.MenaceMemoryManager.store`
    ``memory_id`` int, ``key`` str, ``version`` int, ``tags`` list[str],
    ``ts`` float, ``data`` str (the stored text, cut to 4,000 characters).

``code:new``  from :meth:`menace.code_db.CodeDB.add`
    ``code_id`` int, ``summary`` str, ``language`` str, ``tags`` list[str],
    ``ts`` float, ``code`` str (cut to 4,000 characters).

``workflows:new``  from :meth:`menace.workflow_db.WorkflowDB.add`
    ``workflow_id`` int, ``name`` str, ``steps`` list[str] (the first 100
    steps, each cut to 200 characters), ``n_steps`` int (all of them),
    ``actions`` str (the steps joined by ``->``, the same spelling as a
    pathway's actions, cut to 4,000 characters), ``description`` str,
    ``tags`` list[str], ``ts`` float.

Every payload, of these topics or any other, is at most
:data:`~menace.unified_event_bus.MAX_PAYLOAD_CHARS` characters (about its
JSON size) and holds only finite numbers and integers within 64 bits.

Output topics (the coordinator and the service publish):

``learning:trained``  ``engine`` str, ``model`` str, ``mode`` ("partial" |
    "full" | "auto"), ``examples`` int (partial: runs learned by this update;
    full / auto: runs the new model was fitted on), ``duration_s`` float,
    ``ts`` float, ``job_id`` int or null, plus ``run_ids`` list[int]
    (partial: the runs just learned), ``best`` str and ``scores``
    dict[str, float] (auto), ``reason`` ("drift") for a retrain the drift
    policy asked for, and ``learned_through`` int: the newest run id the live
    model has learned after this training. A full or auto training lists no
    run ids: it fitted the runs stored when it started, up to
    ``learned_through`` (a drift retrain: the newest of them, the older ones
    learned before), and later partial updates skip those runs. For a partial
    update it is not a bound: a run parked for its text's embedding is learned
    after newer ones, and is listed in the ``run_ids`` of the update that
    learns it.
``learning:evaluated``  ``engine`` str, ``model`` str, ``cv_score`` float,
    ``holdout_score`` float (both in [0, 1]), ``n_examples`` int, ``ts`` float,
    ``duration_s`` float, ``trigger`` ("examples" | "interval" | "manual"),
    ``job_id`` int or null; also ``holdout_auc`` and ``cv_std`` when known.
``learning:error``  ``engine`` str, ``error`` str, ``source`` str (topic, job
    kind or "embedding"), ``ts`` float, ``job_id`` int or null; ``run_id`` int
    when one pathway run could not be learned.
``learning:progress``  ``job_id`` int, ``kind`` str ("train" | "evaluate" |
    "auto_train"), ``engine`` str, ``fraction`` float in [0, 1], ``message``
    str, ``ts`` float.
``learning:cancelled``  ``job_id`` int, ``kind`` str, ``engine`` str, ``ts`` float.
``learning:scored``  a workflow plan scored by a trained engine: ``engine``
    str, ``model`` str, ``workflow_id`` int, ``actions`` str, ``pathway_id``
    int or null (the pathway with the same actions, if any),
    ``success_probability`` float in [0, 1], ``ts`` float.
``learning:prequential``  the live model's test-then-train figures (see
    :mod:`menace.prequential`), at most a few times a second: ``engine`` str,
    ``model`` str, ``accuracy`` and ``baseline`` (majority class) over the last
    ``n_window`` runs learned incrementally, ``log_loss``, ``brier``,
    ``n_window`` int, ``n_total`` int (runs scored since the model was made),
    ``accuracy_total``, ``baseline_total``, ``log_loss_total``, ``ts`` float.
``learning:drift``  the error rate of the live model rose: ``engine`` str,
    ``model`` str, ``n_examples`` int (runs scored when it was found),
    ``error_before`` and ``error_after`` (0..1), ``runs_after`` int (runs
    since the change), ``action`` ("retrain" | "retrain pending": one is
    already scheduled | "none": the drift policy),
    ``ts`` float.
``service:started`` / ``service:stopped``  ``data_dir`` str, ``model`` str,
    ``metrics_url`` str or null, ``ts`` float.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from .errors import FieldError
from .labels import label_of
from .validation import MAX_INT

#: Subscribing to this topic receives every event.
ALL = "*"

#: Longest text copied into a payload; the full text stays in the store.
PAYLOAD_TEXT_LIMIT = 4000


class Event(NamedTuple):
    """One published event as a monitor sees it.

    ``id`` grows in publish order (the journal's row id when the bus keeps a
    journal); ``ts`` is when it was published (seconds since the epoch).
    """

    id: int
    ts: float
    topic: str
    payload: dict[str, Any]


class CheckedPayload(dict):
    """A payload a Menace store built only from validated text and finite numbers.

    To subscribers it is a dict like any other. The bus publishes it without
    walking it again for JSON types (that walk costs as much as a tenth of a
    logged run), journaled or not; a payload from anywhere else is always
    checked. Only :func:`pathway_new` builds one: whoever builds one vouches
    for every value in it.
    """

    __slots__ = ()

    # A copy is a plain dict: whoever copies it may change it, so the bus checks it again.
    def __copy__(self) -> dict:
        return dict(self)

    def __deepcopy__(self, memo: dict) -> dict:
        return copy.deepcopy(dict(self), memo)


def clip(text: str, limit: int = PAYLOAD_TEXT_LIMIT) -> str:
    """Cut ``text`` for a payload, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def is_clipped(text: str) -> bool:
    """Whether ``text`` may be a payload text :func:`clip` cut (the store has the whole)."""
    return len(text) >= PAYLOAD_TEXT_LIMIT and text.endswith("\u2026")


class Direction(StrEnum):
    INPUT = "input"  # a store committed a record
    OUTPUT = "output"  # a result of learning, or news of the service


# -- field checks: each raises FieldError naming the payload key --------------------------


def _is_int(value: Any) -> bool:
    return type(value) is int or (isinstance(value, int) and not isinstance(value, bool))


def _id(key: str, value: Any) -> None:
    if not _is_int(value) or not 1 <= value <= MAX_INT:
        raise FieldError(key, f"{key} must be an integer in 1..{MAX_INT}, got {_short_int(value)}")


def _count(key: str, value: Any) -> None:
    if not _is_int(value) or not 0 <= value <= MAX_INT:
        raise FieldError(key, f"{key} must be an integer in 0..{MAX_INT}, got {_short_int(value)}")


def _number(key: str, value: Any) -> None:
    if isinstance(value, float):
        if math.isfinite(value):
            return
    elif _is_int(value) and -MAX_INT <= value <= MAX_INT:  # beyond: not a float, not an SQLite int
        return
    raise FieldError(key, f"{key} must be a finite number, got {_short_int(value)}")


def _short_int(value: Any) -> str:
    """``repr(value)`` cut to 60 characters (an int of 5,000 digits has no repr at all)."""
    if _is_int(value) and abs(value) > 10**50:
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    return f"{value!r:.60}"


def _seconds(key: str, value: Any) -> None:
    _number(key, value)
    if value < 0:
        raise FieldError(key, f"{key} must be >= 0, got {value!r}")


def _fraction(key: str, value: Any) -> None:
    _number(key, value)
    if not 0 <= value <= 1:
        raise FieldError(key, f"{key} must be in [0, 1], got {value!r}")


def _text(key: str, value: Any) -> None:
    if type(value) is not str and not isinstance(value, str):
        raise FieldError(key, f"{key} must be text, got {type(value).__name__}")


def _words(key: str, value: Any) -> None:
    _text(key, value)
    if not value.strip():
        raise FieldError(key, f"{key} must not be empty")


def _text_list(key: str, value: Any) -> None:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise FieldError(key, f"{key} must be a list of text, got {value!r:.60}")


def _optional(check: Callable[[str, Any], None]) -> Callable[[str, Any], None]:
    def check_or_none(key: str, value: Any) -> None:
        if value is not None:
            check(key, value)

    return check_or_none


def _anything(key: str, value: Any) -> None:
    del key, value


#: Field kinds a spec can name, and how each is checked.
CHECKS: dict[str, Callable[[str, Any], None]] = {
    "id": _id,
    "id?": _optional(_id),
    "count": _count,
    "number": _number,
    "seconds": _seconds,
    "fraction": _fraction,
    "text": _text,
    "text?": _optional(_text),
    "words": _words,
    "texts": _text_list,
    "any": _anything,
}


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name, direction, required fields (name -> kind, see :data:`CHECKS`),
    the field holding the id of what it announces, and how to summarise it.

    ``optional`` fields are checked when present. ``check`` runs after the
    field checks, for rules across fields (a pathway's label must match its
    outcome, say).
    """

    name: str
    direction: Direction
    fields: Mapping[str, str]
    id_field: str | None
    describe: Callable[[Mapping[str, Any]], str]
    optional: Mapping[str, str] = None  # type: ignore[assignment]
    check: Callable[[Mapping[str, Any]], None] | None = None

    def validate(self, payload: Any) -> None:
        """Raise :class:`~menace.errors.FieldError` naming the first wrong field of ``payload``."""
        if not isinstance(payload, Mapping):
            raise FieldError("payload", f"payload must be a dict, got {type(payload).__name__}")
        for key, kind in self.fields.items():
            if key not in payload:
                raise FieldError(key, f"missing field {key!r}")
            CHECKS[kind](key, payload[key])
        for key, kind in (self.optional or {}).items():
            if key in payload:
                CHECKS[kind](key, payload[key])
        if self.check is not None:
            self.check(payload)

    def build(self, **values: Any) -> dict[str, Any]:
        """A checked payload with ``values`` (``ts`` defaults to now is NOT assumed: pass it)."""
        self.validate(values)
        return values

    def summarise(self, payload: Mapping[str, Any]) -> str:
        """One line describing an event of this topic, for logs and the monitor."""
        try:
            return self.describe(payload)
        except (KeyError, TypeError, ValueError, AttributeError):
            return _generic_summary(payload)


def _generic_summary(payload: Mapping[str, Any]) -> str:
    text = ", ".join(f"{k}={v!s:.30}" for k, v in list(payload.items())[:6])
    return text[:120]


#: What makes a ``pathway:new`` payload a training example (besides its outcome or label).
EXAMPLE_FIELDS = {
    "actions": "words", "exec_time": "seconds", "roi": "number",
    "prior_frequency": "count", "prior_myelination": "number",
}


def example_label(payload: Mapping[str, Any]) -> int:
    """Check the example fields of a ``pathway:new`` payload; return its 0/1 label.

    The label comes from ``outcome`` (:func:`menace.labels.label_of`); a
    payload without an outcome may give ``label`` (0 or 1) instead; with
    both, they must agree. Raises :class:`~menace.errors.FieldError`.
    """
    missing = [key for key in EXAMPLE_FIELDS if key not in payload]
    if "outcome" not in payload and "label" not in payload:
        missing.append("outcome")
    if missing:
        raise FieldError(missing[0], f"missing {', '.join(missing)}")
    for key, kind in EXAMPLE_FIELDS.items():
        CHECKS[kind](key, payload[key])
    if "outcome" in payload:
        label = label_of(payload["outcome"])  # FieldError names the outcome
        if "label" in payload and payload["label"] != label:
            raise FieldError("label", f"label {payload['label']!r} does not match outcome {payload['outcome']!r}")
        return label
    given = payload["label"]
    if type(given) is not int or given not in (0, 1):
        raise FieldError("label", f"label must be 0 or 1, got {given!r:.60}")
    return given


def _label_matches_outcome(payload: Mapping[str, Any]) -> None:
    if "outcome" not in payload:
        raise FieldError("outcome", "missing field 'outcome'")
    example_label(payload)


def _code_summary_is_text(payload: Mapping[str, Any]) -> None:
    if not isinstance(payload.get("summary", ""), str):
        raise FieldError("summary", "summary must be text")


PATHWAY_NEW = "pathway:new"
MEMORY_NEW = "memory:new"
CODE_NEW = "code:new"
WORKFLOWS_NEW = "workflows:new"
LEARNING_TRAINED = "learning:trained"
LEARNING_EVALUATED = "learning:evaluated"
LEARNING_ERROR = "learning:error"
LEARNING_PROGRESS = "learning:progress"
LEARNING_CANCELLED = "learning:cancelled"
LEARNING_SCORED = "learning:scored"
LEARNING_PREQUENTIAL = "learning:prequential"
LEARNING_DRIFT = "learning:drift"
SERVICE_STARTED = "service:started"
SERVICE_STOPPED = "service:stopped"

_SPECS = (
    TopicSpec(
        PATHWAY_NEW, Direction.INPUT,
        {"pathway_id": "id", "run_id": "id"},
        "run_id",
        lambda p: (
            f"pathway #{p['pathway_id']} run #{p['run_id']}: {p['actions']!s:.60} "
            f"{p['outcome']} roi={p['roi']:.3g} t={p['exec_time']:.3g}s"
        ),
        check=_label_matches_outcome,
    ),
    TopicSpec(
        MEMORY_NEW, Direction.INPUT, {"memory_id": "id", "data": "text"}, "memory_id",
        lambda p: f"memory {p['key']!s:.40} v{p['version']} tags={','.join(p.get('tags', []))}",
        optional={"tags": "texts"},
    ),
    TopicSpec(
        CODE_NEW, Direction.INPUT, {"code_id": "id", "code": "words"}, "code_id",
        lambda p: f"code #{p['code_id']} ({p.get('language', '')}): {p.get('summary', '')!s:.60}",
        check=_code_summary_is_text,
    ),
    TopicSpec(
        WORKFLOWS_NEW, Direction.INPUT, {"workflow_id": "id", "actions": "words"}, "workflow_id",
        lambda p: f"workflow #{p['workflow_id']} {p['name']!s:.40}: {len(p.get('steps', []))} steps",
    ),
    TopicSpec(
        LEARNING_TRAINED, Direction.OUTPUT,
        {"engine": "words", "model": "text", "mode": "words", "examples": "count",
         "duration_s": "seconds", "ts": "number", "job_id": "id?"},
        "job_id",
        lambda p: (
            f"{p.get('engine', '')} trained ({p.get('mode')}, {p.get('model')}) on "
            f"{p.get('examples')} examples in {p.get('duration_s', 0):.3f}s"
        ),
    ),
    TopicSpec(
        LEARNING_EVALUATED, Direction.OUTPUT,
        {"engine": "words", "model": "text", "cv_score": "fraction", "holdout_score": "fraction",
         "n_examples": "count", "ts": "number", "duration_s": "seconds", "trigger": "words",
         "job_id": "id?"},
        "job_id",
        lambda p: (
            f"{p.get('engine', '')} evaluated ({p.get('model')}): cv={p['cv_score']:.3f} "
            f"holdout={p['holdout_score']:.3f}"
        ),
        optional={"holdout_auc": "fraction", "cv_std": "number"},
    ),
    TopicSpec(
        LEARNING_ERROR, Direction.OUTPUT,
        {"engine": "words", "error": "text", "source": "text", "ts": "number", "job_id": "id?"},
        "job_id",
        lambda p: f"{p.get('engine', '')} error from {p.get('source')}: {p.get('error')!s:.80}",
        optional={"run_id": "id"},
    ),
    TopicSpec(
        LEARNING_PROGRESS, Direction.OUTPUT,
        {"job_id": "id", "kind": "words", "engine": "words", "fraction": "fraction",
         "message": "text", "ts": "number"},
        "job_id",
        lambda p: f"job {p.get('job_id')} {p.get('kind')}: {100 * p.get('fraction', 0):.0f}% {p.get('message', '')}",
    ),
    TopicSpec(
        LEARNING_CANCELLED, Direction.OUTPUT,
        {"job_id": "id", "kind": "words", "engine": "words", "ts": "number"},
        "job_id",
        lambda p: f"job {p['job_id']} {p['kind']} on {p['engine']} cancelled",
    ),
    TopicSpec(
        LEARNING_SCORED, Direction.OUTPUT,
        {"engine": "words", "model": "text", "workflow_id": "id", "actions": "text",
         "pathway_id": "id?", "success_probability": "fraction", "ts": "number"},
        "workflow_id",
        lambda p: (
            f"{p.get('engine', '')} scored workflow #{p['workflow_id']}: "
            f"p(success)={p['success_probability']:.3f}"
        ),
    ),
    TopicSpec(
        LEARNING_PREQUENTIAL, Direction.OUTPUT,
        {"engine": "words", "model": "text", "accuracy": "fraction", "baseline": "fraction",
         "log_loss": "number", "n_window": "count", "n_total": "count", "ts": "number"},
        None,
        lambda p: (
            f"{p.get('engine', '')} ({p.get('model')}) test-then-train accuracy {p['accuracy']:.3f} "
            f"vs guessing {p['baseline']:.3f} over {p['n_window']} runs ({p['n_total']} scored)"
        ),
        optional={"brier": "fraction", "accuracy_total": "fraction", "baseline_total": "fraction"},
    ),
    TopicSpec(
        LEARNING_DRIFT, Direction.OUTPUT,
        {"engine": "words", "model": "text", "n_examples": "count", "error_before": "fraction",
         "error_after": "fraction", "runs_after": "count", "action": "words", "ts": "number"},
        None,
        lambda p: (
            f"{p.get('engine', '')} ({p.get('model')}) drift: error {p['error_before']:.3f} -> "
            f"{p['error_after']:.3f} over the last {p['runs_after']} runs; {p['action']}"
        ),
    ),
    TopicSpec(
        SERVICE_STARTED, Direction.OUTPUT,
        {"data_dir": "text", "model": "text", "metrics_url": "text?", "ts": "number"}, None,
        lambda p: f"service started on {p['data_dir']} (model {p['model']})",
    ),
    TopicSpec(
        SERVICE_STOPPED, Direction.OUTPUT,
        {"data_dir": "text", "model": "text", "metrics_url": "text?", "ts": "number"}, None,
        lambda p: f"service stopped on {p['data_dir']}",
    ),
)

#: Every topic's spec, by name.
TOPICS: dict[str, TopicSpec] = {s.name: s for s in _SPECS}
INPUT_TOPICS = tuple(s.name for s in _SPECS if s.direction is Direction.INPUT)
OUTPUT_TOPICS = tuple(s.name for s in _SPECS if s.direction is Direction.OUTPUT)


def spec(topic: str) -> TopicSpec:
    """The spec of ``topic``; ``ValueError`` naming the known topics for any other."""
    found = TOPICS.get(topic)
    if found is None:
        raise FieldError("topic", f"unknown topic {topic!r:.60}; known: {', '.join(TOPICS)}")
    return found


def validate(topic: str, payload: Any) -> None:
    """Check ``payload`` against the spec of ``topic`` (:class:`~menace.errors.FieldError`)."""
    spec(topic).validate(payload)


def validate_input(topic: str, payload: Any) -> None:
    """Check an event the coordinator learns from: ``topic`` must be an input topic."""
    found = TOPICS.get(topic)
    if found is None or found.direction is not Direction.INPUT:
        raise FieldError("topic", f"unknown input topic {topic!r:.60}; inputs: {', '.join(INPUT_TOPICS)}")
    found.validate(payload)


def summarize(topic: str, payload: Mapping[str, Any]) -> str:
    """One line describing an event (a topic without a spec gets its first fields)."""
    found = TOPICS.get(topic)
    if found is None or not isinstance(payload, Mapping):
        return _generic_summary(payload) if isinstance(payload, Mapping) else str(payload)[:120]
    return found.summarise(payload)


def _all_finite(values: Iterable[Any]) -> bool:
    """Whether every value is a finite float or an int within SQLite's range (no names: fast)."""
    for value in values:
        kind = type(value)
        if kind is float:
            if value - value != 0.0:  # NaN and both infinities
                return False
        elif kind is not int or not -MAX_INT <= value <= MAX_INT:
            return False
    return True


def _finite(**values: Any) -> None:
    """Raise ``FieldError`` unless every value is a finite float or an int within SQLite's range."""
    for key, value in values.items():
        kind = type(value)
        if kind is float:
            if value - value == 0.0:  # false for NaN and both infinities
                continue
        elif kind is int and -MAX_INT <= value <= MAX_INT:
            continue
        raise FieldError(key, f"{key} must be a finite number, got {_short_int(value)}")


def pathway_new(
    pathway_id: int, run_id: int, ts: float, actions: str, inputs: str, outputs: str,
    exec_time: float, resources: str, outcome: str, roi: float, label: int,
    prior_frequency: int, prior_myelination: float, stats: dict[str, Any],
    external: bool = False, numbers_checked: bool = False,
) -> CheckedPayload:
    """The ``pathway:new`` payload of one stored run (the one builder of it).

    The caller vouches that every text is validated (a store's checks did it);
    the numbers are checked here (finite, integers within SQLite's range,
    ``FieldError`` otherwise), so that the bus, which does not walk a
    :class:`CheckedPayload` again, takes exactly what it takes from anyone
    else. Long texts are clipped to :data:`PAYLOAD_TEXT_LIMIT`.
    ``numbers_checked``: the caller has checked the numbers too (a store that
    just wrote them from a validated record and checked the aggregates).
    """
    if not numbers_checked and not (
        _all_finite((pathway_id, run_id, ts, exec_time, roi, label, prior_frequency, prior_myelination))
        and _all_finite(stats.values())
    ):  # the slow check names the field
        _finite(
            pathway_id=pathway_id, run_id=run_id, ts=ts, exec_time=exec_time, roi=roi, label=label,
            prior_frequency=prior_frequency, prior_myelination=prior_myelination,
        )
        _finite(**stats)
    limit = PAYLOAD_TEXT_LIMIT
    payload = CheckedPayload({
        "pathway_id": pathway_id,
        "run_id": run_id,
        "ts": ts,
        "actions": actions if len(actions) <= limit else clip(actions),
        "inputs": inputs if len(inputs) <= limit else clip(inputs),
        "outputs": outputs if len(outputs) <= limit else clip(outputs),
        "exec_time": exec_time,
        "resources": resources if len(resources) <= limit else clip(resources),
        "outcome": outcome,
        "roi": roi,
        "label": label,
        "prior_frequency": prior_frequency,
        "prior_myelination": prior_myelination,
        "stats": stats,
    })
    if external:
        payload["external"] = True
    return payload
