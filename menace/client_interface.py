"""The one interface a monitor or a bot uses to reach a running Menace (import it from :mod:`menace.client`).

:class:`MenaceClient` is everything the desktop monitor does: follow the
events (live, and those missed since an id), log a run or a GPT interaction,
ask for a prediction, request and cancel learning jobs, and read pathways,
memory, the evaluation history and counts. Widgets see only this interface,
never a store, a model or SQL, so the same window can show a stack running in
its own process (:class:`menace.local_client.LocalClient`) or a service on
another machine.

Every method may be called from any thread except where it says otherwise;
reads and writes may block on disk or network, so a GUI calls them off its
own thread. Bad input raises ``ValueError`` naming the field (a
:class:`menace.errors.FieldError` where the field is known) and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .events import Event
from .jobs import JobInfo
from .neuroplasticity import LoggedRun

EventCallback = Callable[[Event], Any]

__all__ = [
    "ClientStatus", "Contribution", "Counts", "EventCallback", "Explanation", "LoggedRun", "MenaceClient",
    "Prediction",
]


@dataclass(frozen=True)
class Prediction:
    """A success probability (0..1) and the model that gave it.

    ``trained`` is False when no model has been trained yet (the probability
    is then the untrained answer, 0.5).
    """

    probability: float
    model: str
    trained: bool


@dataclass(frozen=True)
class Contribution:
    """How much one input pushed a prediction up (``effect`` > 0) or down, in probability (-1..1).

    ``name`` is the input (``exec_time``, ``step 2``), ``label`` how a person
    reads it (``exec time (s)``, the step's text), ``kind`` ``"feature"`` or
    ``"step"``, ``value`` the input as given and ``reference`` what it was
    replaced with (the training mean of a number; ``None`` for a step, which
    is left out). See :mod:`menace.explain` for how it is computed.
    """

    name: str
    label: str
    kind: str
    value: Any
    reference: float | None
    effect: float


@dataclass(frozen=True)
class Explanation:
    """A prediction (as :class:`Prediction`) with what pushed it up or down.

    ``contributions`` come largest first; ``method`` says in a sentence how
    they were computed (empty contributions before any training).
    """

    probability: float
    model: str
    trained: bool
    contributions: tuple[Contribution, ...]
    method: str


@dataclass(frozen=True)
class Counts:
    """How much is stored: pathways, runs and memory entries."""

    pathways: int
    runs: int
    memory: int


@dataclass(frozen=True)
class ClientStatus:
    """What a client is connected to.

    ``location`` is the data directory (or the service's URL); ``learner`` is
    True when the stack behind the client learns (it holds the data
    directory); ``metrics_url`` is the Prometheus endpoint or ``None``.
    ``session_event_id`` is the id of the last event published before the
    stack started: ``events_since(session_event_id)`` gives every event of
    this session, start-up included (0: from the journal's start).
    ``model_examples`` is how many runs the live model has learned (its last
    full fit plus the incremental updates since; 0 when untrained), so a
    monitor can set it beside the runs stored.
    """

    location: str
    engine: str
    model: str
    trained: bool
    examples_learned: int
    metrics_url: str | None
    learner: bool
    started: float
    session_event_id: int = 0
    model_examples: int = 0


@runtime_checkable
class MenaceClient(Protocol):
    """Everything a monitor needs from Menace (see the module doc)."""

    # -- what it is connected to --------------------------------------------------
    def status(self) -> ClientStatus:
        """The stack's location, engine, model and whether it learns."""
        ...

    # -- events -----------------------------------------------------------------------
    def subscribe(self, callback: EventCallback) -> None:
        """Call ``callback(event)`` for every event from now on (in a thread of the client's).

        The callback must be quick (append to a queue); it must not call the client.
        """
        ...

    def unsubscribe(self, callback: EventCallback) -> None:
        """Stop calling ``callback``; an unknown one is ignored."""
        ...

    def events_since(self, event_id: int, limit: int = 1000) -> list[Event]:
        """Up to ``limit`` stored events after ``event_id``, oldest first."""
        ...

    # -- writes -----------------------------------------------------------------------
    def log_run(self, run: Mapping[str, Any]) -> LoggedRun:
        """Store one run: the fields of a :class:`~menace.neuroplasticity.PathwayRecord`."""
        ...

    def log_interaction(self, prompt: str, response: str, tags: Sequence[str] = ()) -> int:
        """Store one GPT prompt/response pair (secrets redacted); returns the memory id."""
        ...

    # -- the model --------------------------------------------------------------------
    def predict(
        self, freq: float, exec_time: float, roi: float, myelination: float, actions: str
    ) -> Prediction:
        """The probability that a run of ``actions`` succeeds (see ``LearningEngine.predict_success``)."""
        ...

    def predict_many(self, queries: Sequence[Mapping[str, Any]]) -> list[Prediction]:
        """One prediction per query (``freq``, ``exec_time``, ``roi``, ``myelination``, ``actions``),
        in one batch (at most 10,000; a bad one raises ``FieldError`` naming ``queries[i].field``)."""
        ...

    def explain(
        self, freq: float, exec_time: float, roi: float, myelination: float, actions: str
    ) -> Explanation:
        """:meth:`predict` with the inputs that pushed it up or down (see :mod:`menace.explain`)."""
        ...

    # -- jobs -------------------------------------------------------------------------
    def submit_job(self, kind: str, **options: Any) -> int:
        """Queue a ``train``, ``evaluate`` or ``auto_train`` job; returns its id."""
        ...

    def cancel_job(self, job_id: int) -> bool:
        """Cancel a queued or running job; False if it is unknown or has ended."""
        ...

    def job(self, job_id: int) -> JobInfo | None:
        """The job's state, progress and result, or ``None`` for an unknown id."""
        ...

    def jobs(self) -> list[JobInfo]:
        """Every job this stack has run or queued, oldest first."""
        ...

    # -- reads ------------------------------------------------------------------------
    def pathways(self, limit: int = 5000) -> list[Any]:
        """Pathways (``menace.neuroplasticity.Pathway``), most frequent first."""
        ...

    def find_pathway(self, actions: str) -> Any | None:
        """The pathway with exactly these actions, or ``None``."""
        ...

    def memory(self, text: str = "", limit: int = 200) -> list[Any]:
        """Memory entries (``MemoryEntry``) matching ``text`` (newest first when empty)."""
        ...

    def evaluation_history(self) -> list[dict[str, Any]]:
        """Every stored evaluation of the main engine, oldest first."""
        ...

    def prequential_history(self) -> list[dict[str, Any]]:
        """The main engine's kept test-then-train figures (see ``learning:prequential``), oldest first."""
        ...

    def counts(self) -> Counts:
        """How many pathways, runs and memory entries are stored."""
        ...

    def close(self) -> None:
        """Let go of the stack (a local client does not stop it)."""
        ...
