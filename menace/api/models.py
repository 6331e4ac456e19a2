"""The API's requests and answers, typed, so ``/openapi.json`` says what each route takes.

The request models check types and ranges at the door; the stores and the
coordinator still run their own checks (a :class:`~menace.errors.FieldError`
from them is a 422 naming the field, like a type error here). Unknown fields
are refused (``extra="forbid"``), so a misspelt field is an error, not
silently ignored. Numbers must be finite: JSON's ``NaN`` / ``Infinity``
extensions are refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..labels import Outcome
from ..validation import MAX_ABS, MAX_SECONDS, MAX_TEXT, MAX_TS  # bounds of every entry point

#: Most runs or queries in one request.
MAX_BATCH = 10_000
#: Longest ``actions`` text (as :class:`~menace.neuroplasticity.PathwayRecord`).
MAX_ACTIONS = 100_000


#: Stored text may not hold NUL; an action sequence needs something besides spaces.
NO_NUL = r"^[^\x00]*$"
SOME_WORD = r"^[^\x00]*[^\x00\s][^\x00]*$"

Finite = Annotated[float, Field(ge=-MAX_ABS, le=MAX_ABS, allow_inf_nan=False)]
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
Count = Annotated[float, Field(ge=0, le=MAX_ABS, allow_inf_nan=False)]
Timestamp = Annotated[float, Field(ge=0, le=MAX_TS, allow_inf_nan=False)]
Text = Annotated[str, Field(max_length=MAX_TEXT, pattern=NO_NUL)]
Actions = Annotated[str, Field(min_length=1, max_length=MAX_ACTIONS, pattern=SOME_WORD,
                               description="the action sequence, e.g. fetch->parse")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


# -- runs -----------------------------------------------------------------------------------


class RunIn(_Request):
    """One run of a pathway: the fields of ``menace.neuroplasticity.PathwayRecord``."""

    actions: Actions
    inputs: Text = ""
    outputs: Text = ""
    exec_time: Seconds = Field(0.0, description="seconds")
    resources: Text = ""
    outcome: Outcome = Outcome.SUCCESS
    roi: Finite = 0.0
    ts: Timestamp | None = Field(None, description="seconds since the epoch; default: when stored")


class LoggedRunOut(BaseModel):
    run_id: int
    pathway_id: int


class RunsOut(BaseModel):
    """Where each run was stored, in the order given."""

    runs: list[LoggedRunOut]


# -- interactions ---------------------------------------------------------------------------


class InteractionIn(_Request):
    """A prompt/response pair with a language model (secrets are redacted before storing)."""

    prompt: Annotated[str, Field(min_length=1, max_length=MAX_TEXT, pattern=SOME_WORD)]
    response: Text = ""
    tags: Annotated[list[Annotated[str, Field(min_length=1, max_length=200, pattern=SOME_WORD)]], Field(max_length=100)] = []


class InteractionOut(BaseModel):
    memory_id: int


# -- predictions ----------------------------------------------------------------------------


class PredictIn(_Request):
    """The five inputs of ``LearningEngine.predict_success``."""

    freq: Count = Field(description="the pathway's frequency before the run (0 for a new one)")
    exec_time: Seconds = Field(description="seconds")
    roi: Finite
    myelination: Finite = Field(description="the pathway's myelination score before the run")
    actions: Actions


class ContributionOut(BaseModel):
    """How much one input pushed the prediction up (``effect`` > 0) or down, in probability."""

    name: str
    label: str
    kind: str = Field(description='"feature" (a number) or "step" (a step of the action text)')
    value: Any
    reference: float | None = Field(description="what the number was replaced with (its training mean)")
    effect: float


class ExplanationOut(BaseModel):
    """A prediction with the inputs that pushed it up or down, largest first (see ``menace.explain``)."""

    probability: float
    model: str
    trained: bool
    contributions: list[ContributionOut]
    method: str


class PredictionsOut(BaseModel):
    """One success probability (0..1) per query, in order, and the model that gave them.

    ``trained`` False: no model yet, every probability is 0.5.
    """

    probabilities: list[float]
    model: str
    trained: bool


# -- jobs -----------------------------------------------------------------------------------


EngineName = Annotated[str, Field(min_length=1, max_length=100, pattern=SOME_WORD)]


class TrainJobIn(_Request):
    """A full ``train`` of the engine (default: the main one) on every stored run."""

    kind: Literal["train"]
    engine: EngineName | None = None


class EvaluateJobIn(_Request):
    """An ``evaluate``: ``cv``-fold cross-validation and a ``test_split`` holdout (0..1)."""

    kind: Literal["evaluate"]
    engine: EngineName | None = None
    cv: Annotated[int, Field(ge=2, le=20)] | None = None
    test_split: Annotated[float, Field(gt=0, lt=1)] | None = None


class AutoTrainJobIn(_Request):
    """An ``auto_train``: compare ``candidates`` (model names) within ``time_budget`` seconds."""

    kind: Literal["auto_train"]
    engine: EngineName | None = None
    candidates: Annotated[list[EngineName], Field(min_length=1, max_length=20)] | None = None
    time_budget: Annotated[float, Field(gt=0, le=86_400)] | None = None


#: A manual job; ``kind`` says which and which options it takes.
JobIn = Annotated[TrainJobIn | EvaluateJobIn | AutoTrainJobIn, Field(discriminator="kind")]


def job_request(engines: tuple[str, ...]) -> Any:
    """:data:`JobIn` with ``engine`` one of ``engines`` (the running stack's), so the schema lists them."""
    if not engines:
        return JobIn
    names = Literal[engines]  # type: ignore[valid-type]
    kinds = [
        create_model(model.__name__, __base__=model, __doc__=model.__doc__, engine=(names | None, None))
        for model in (TrainJobIn, EvaluateJobIn, AutoTrainJobIn)
    ]
    return Annotated[kinds[0] | kinds[1] | kinds[2], Field(discriminator="kind")]


class JobOut(BaseModel):
    """A job's state (``queued``, ``running``, ``done``, ``failed``, ``cancelled``),
    its last progress (``fraction`` 0..1, ``message``) and result."""

    id: int
    kind: str
    engine: str
    state: str
    params: dict[str, Any]
    fraction: float
    message: str
    result: Any = None
    error: str | None = None
    submitted: float
    started: float | None = None
    finished: float | None = None


class CancelOut(BaseModel):
    """``cancelled`` False: the job had already ended."""

    cancelled: bool
    job: JobOut


# -- events ---------------------------------------------------------------------------------


class EventOut(BaseModel):
    """One event: ``id`` from the journal, ``ts`` seconds since the epoch, its topic and payload
    (the payload of each topic is documented in ``menace/events.py``)."""

    id: int
    ts: float
    topic: str
    payload: dict[str, Any]


class EventsOut(BaseModel):
    events: list[EventOut]
    newest_id: int


# -- reads ----------------------------------------------------------------------------------


class StatusOut(_Answer):
    """What the service is: its data directory, engine, model, how much it learned."""

    location: str
    engine: str
    model: str
    trained: bool
    examples_learned: int = Field(description="examples learned incrementally since the service started")
    n_seen: int = Field(description="examples the live model has learned in all")
    model_examples: int = Field(description="runs the live model has learned (0 when untrained)")
    learned_through: int = Field(description="the newest run id the live model learned")
    metrics_url: str | None
    api_url: str | None
    learner: bool
    started: float
    session_event_id: int = Field(description="the newest event before the service started")
    newest_event_id: int
    journal: bool = Field(description="False: event ids are not durable (the service runs with --no-journal)")
    queue_depth: int
    pid: int
    api_version: str


class PathwayOut(BaseModel):
    id: int
    actions: str
    frequency: int
    successes: int
    success_rate: float
    avg_exec_time: float
    avg_roi: float
    last_activation: float
    myelination_score: float


class MemoryEntryOut(BaseModel):
    id: int
    key: str
    version: int
    data: str
    tags: list[str]
    ts: float


class CountsOut(BaseModel):
    pathways: int
    runs: int
    memory: int


class HealthOut(BaseModel):
    status: Literal["ok"]


# -- errors ---------------------------------------------------------------------------------


class FieldProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str
    field: str


class ErrorOut(BaseModel):
    """A refused request: ``field`` names the first wrong input (``runs[3].exec_time``),
    ``message`` says what is wrong with it; ``detail`` lists every problem found."""

    detail: list[FieldProblem] | str
    field: str | None = None
    message: str
