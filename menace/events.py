"""Every bus topic and the shape of its payload, in one place.

A subscriber is called as ``callback(topic, payload)``. Payloads are
JSON-serialisable dicts; each carries the id of what it announces and ``ts``
(seconds since the epoch, UTC). Producers build payloads with the functions in
the stores; this module is the reference a reader or a monitor needs.

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
    service's :class:`~menace.run_watcher.RunWatcher` announced it (its
    ``stats`` are then the pathway's when it was picked up).

``memory:new``  from :meth:`menace.menace_memory_manager.MenaceMemoryManager.store`
    ``memory_id`` int, ``key`` str, ``version`` int, ``tags`` list[str],
    ``ts`` float, ``data`` str (the stored text, cut to 4,000 characters).

``code:new``  from :meth:`menace.code_db.CodeDB.add`
    ``code_id`` int, ``summary`` str, ``language`` str, ``tags`` list[str],
    ``ts`` float, ``code`` str (cut to 4,000 characters).

``workflows:new``  from :meth:`menace.workflow_db.WorkflowDB.add`
    ``workflow_id`` int, ``name`` str, ``steps`` list[str], ``actions`` str
    (the steps joined by ``->``, the same spelling as a pathway's actions),
    ``description`` str, ``tags`` list[str], ``ts`` float.

Output topics (the coordinator and the service publish):

``learning:trained``  ``engine`` str, ``model`` str, ``mode`` ("partial" |
    "full" | "auto"), ``examples`` int, ``duration_s`` float, ``ts`` float,
    ``job_id`` int or null, plus ``run_ids`` list[int] (partial: the runs just
    learned), ``best`` str and ``scores`` dict[str, float] (auto).
``learning:evaluated``  ``engine`` str, ``model`` str, ``cv_score`` float,
    ``holdout_score`` float (both in [0, 1]), ``n_examples`` int, ``ts`` float,
    ``duration_s`` float, ``trigger`` ("examples" | "interval" | "manual"),
    ``job_id`` int or null.
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
``service:started`` / ``service:stopped``  ``data_dir`` str, ``model`` str,
    ``metrics_url`` str or null, ``ts`` float.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

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
SERVICE_STARTED = "service:started"
SERVICE_STOPPED = "service:stopped"

#: Subscribing to this topic receives every event.
ALL = "*"

INPUT_TOPICS = (PATHWAY_NEW, MEMORY_NEW, CODE_NEW, WORKFLOWS_NEW)
OUTPUT_TOPICS = (
    LEARNING_TRAINED,
    LEARNING_EVALUATED,
    LEARNING_ERROR,
    LEARNING_PROGRESS,
    LEARNING_CANCELLED,
    LEARNING_SCORED,
    SERVICE_STARTED,
    SERVICE_STOPPED,
)

class Event(NamedTuple):
    """One published event as a monitor sees it.

    ``id`` grows in publish order (the journal's row id when the bus keeps a
    journal); ``ts`` is when it was published (seconds since the epoch).
    """

    id: int
    ts: float
    topic: str
    payload: dict[str, Any]


#: Longest text copied into a payload; the full text stays in the store.
PAYLOAD_TEXT_LIMIT = 4000


class CheckedPayload(dict):
    """A payload a Menace store built only from validated text and finite numbers.

    To subscribers it is a dict like any other. The bus publishes it without
    walking it again for JSON types (that walk costs as much as a tenth of a
    logged run); a payload from anywhere else is always checked.
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


def summarize(topic: str, payload: dict) -> str:
    """One line describing an event, for logs and the desktop monitor."""
    p = payload
    try:
        if topic == PATHWAY_NEW:
            return (
                f"pathway #{p['pathway_id']} run #{p['run_id']}: {p['actions']!s:.60} "
                f"{p['outcome']} roi={p['roi']:.3g} t={p['exec_time']:.3g}s"
            )
        if topic == MEMORY_NEW:
            return f"memory {p['key']!s:.40} v{p['version']} tags={','.join(p.get('tags', []))}"
        if topic == CODE_NEW:
            return f"code #{p['code_id']} ({p.get('language', '')}): {p.get('summary', '')!s:.60}"
        if topic == WORKFLOWS_NEW:
            return f"workflow #{p['workflow_id']} {p['name']!s:.40}: {len(p.get('steps', []))} steps"
        if topic == LEARNING_TRAINED:
            return (
                f"{p.get('engine', '')} trained ({p.get('mode')}, {p.get('model')}) on "
                f"{p.get('examples')} examples in {p.get('duration_s', 0):.3f}s"
            )
        if topic == LEARNING_EVALUATED:
            return (
                f"{p.get('engine', '')} evaluated: cv={p['cv_score']:.3f} "
                f"holdout={p['holdout_score']:.3f}"
            )
        if topic == LEARNING_ERROR:
            return f"{p.get('engine', '')} error from {p.get('source')}: {p.get('error')!s:.80}"
        if topic == LEARNING_PROGRESS:
            return f"job {p.get('job_id')} {p.get('kind')}: {100 * p.get('fraction', 0):.0f}% {p.get('message', '')}"
        if topic == LEARNING_SCORED:
            return (
                f"{p.get('engine', '')} scored workflow #{p['workflow_id']}: "
                f"p(success)={p['success_probability']:.3f}"
            )
    except (KeyError, TypeError, ValueError):
        pass
    text = ", ".join(f"{k}={v!s:.30}" for k, v in list(p.items())[:6])
    return text[:120]
