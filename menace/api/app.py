"""The routes of Menace's HTTP API over a running :class:`~menace.self_learning_service.ServiceStack`.

Every ``/v1`` route needs ``Authorization: Bearer <token>`` (401 otherwise,
compared in constant time); ``/healthz`` needs nothing; ``/metrics`` needs the
token only when ``metrics_auth`` is set. The routes are ``async`` and hand
every blocking call (SQLite, the model) to the server's own thread pool, so
a slow read never holds up the event loop that serves ``/v1/events``.

Bad input is a 422 whose body names the field (``field``: ``exec_time``,
``runs[3].exec_time``, ``limit``) and says what is wrong (``message``), and
nothing is written: a list of runs is checked whole before one transaction
stores it.
"""

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPBearer
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from pydantic import Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import events
from ..errors import FieldError
from ..jobs import JobKind
from ..models import available_models
from ..neuroplasticity import PathwayRecord
from ..validation import MAX_INT
from . import API_VERSION, models, tokens
from .event_stream import EventFeed

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Largest request body (bytes): 10,000 runs with long texts fit.
MAX_BODY_BYTES = 64 * 2**20
#: Longest text in a query string (characters); the server reads request heads of up to 1 MiB.
MAX_QUERY_TEXT = 10_000
MAX_HEAD_BYTES = 2**20
#: Seconds between keep-alive comments on an idle event stream.
HEARTBEAT = 15.0
#: A list body's items are named ``<name>[i].field`` in errors.
LIST_NAMES = {"/v1/runs": "runs", "/v1/predict": "queries"}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": models.ErrorOut, "description": "missing or wrong bearer token"},
    422: {"model": models.ErrorOut, "description": "bad input: `field` names it, nothing was written"},
    503: {"model": models.ErrorOut, "description": "the service is stopping"},
}
RunList = Annotated[list[models.RunIn], Field(max_length=models.MAX_BATCH)]
QueryList = Annotated[list[models.PredictIn], Field(max_length=models.MAX_BATCH)]
JobId = Annotated[int, Path(ge=1, le=MAX_INT)]
EventId = Annotated[int, Query(ge=0, le=MAX_INT)]
NOT_FOUND = {404: {"model": models.ErrorOut, "description": "no such item"}}


class ApiError(Exception):
    """An answer other than 2xx, with a message (and the field it is about)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


# -- errors as answers --------------------------------------------------------------------


def _error(status: int, message: str, field: str | None = None, detail: Any = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"detail": detail if detail is not None else message, "field": field, "message": message}
    return JSONResponse(body, status_code=status, headers=headers)


#: The tags pydantic puts in an error's location for the branch of a union body.
JOB_KINDS = frozenset(kind.value for kind in JobKind)


def _is_branch(part: Any) -> bool:
    return isinstance(part, str) and (part.startswith("list[") or part[:1].isupper() or part in JOB_KINDS)


def _field_of(loc: tuple | list, list_name: str, body_is_list: bool) -> tuple[list[str | int], str]:
    """``("body", "list[RunIn]", 3, "exec_time")`` -> (clean loc, ``"runs[3].exec_time"``)."""
    loc = list(loc)
    where = loc[0] if loc else "body"
    rest = loc[1:]
    if where == "body" and rest and _is_branch(rest[0]):
        rest = rest[1:]  # the branch of a one-or-a-list body, or the kind of a job
    name = ""
    for part in rest:
        if isinstance(part, int):
            name += f"[{part}]" if name or not body_is_list else f"{list_name}[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return [where, *rest], name or ("body" if where == "body" else str(where))


def _branch_matches(loc: tuple | list, body_is_list: bool) -> bool:
    """For a one-or-a-list body, keep only the errors of the branch the body took."""
    if len(loc) < 2 or loc[0] != "body" or not isinstance(loc[1], str):
        return True
    tag = loc[1]
    if tag.startswith("list["):
        return body_is_list
    if tag[:1].isupper():
        return not body_is_list
    return True  # a job kind: one branch is chosen by its tag


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    list_name = LIST_NAMES.get(request.url.path, "body")
    body = getattr(exc, "body", None)
    body_is_list = isinstance(body, list)
    problems = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        if not _branch_matches(loc, body_is_list):
            continue
        if str(err.get("type", "")).startswith("union_tag"):  # a missing or unknown job kind
            loc = (*loc, str((err.get("ctx") or {}).get("discriminator", "kind")).strip("'"))
        clean, field = _field_of(loc, list_name, body_is_list)
        problems.append({"loc": clean, "msg": f"{field}: {err.get('msg', 'invalid')}",
                         "type": str(err.get("type", "value_error")), "field": field})
    if not problems:
        problems.append({"loc": ["body"], "msg": "body: invalid", "type": "value_error", "field": "body"})
    first = problems[0]
    return _error(422, first["msg"], first["field"], problems)


@contextmanager
def _naming(list_name: str, index: int, is_list: bool) -> Iterator[None]:
    """Name a FieldError raised inside after the item of a list body it is about (``runs[3].roi``)."""
    try:
        yield
    except FieldError as exc:
        if not is_list:
            raise
        field = f"{list_name}[{index}].{exc.field}"
        raise FieldError(field, f"{field}: {exc}") from None


async def refuse_unknown_query(request: Request) -> None:
    """A query parameter the route does not take is a 422 naming it (a typo must not be ignored)."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    known = _query_names(route) if route is not None else frozenset()
    for name in request.query_params:
        if name not in known:
            valid = ", ".join(sorted(known)) or "none"
            field = name or "(no name)"
            raise FieldError(field, f"{field}: not a query parameter of this route (known: {valid})")


_QUERY_NAMES: dict[int, frozenset[str]] = {}


def _query_names(route: Any) -> frozenset[str]:
    names = _QUERY_NAMES.get(id(route))
    if names is None:
        found: set[str] = set()
        todo = [route.dependant]
        while todo:  # the route's own parameters and those of its dependencies
            dependant = todo.pop()
            found.update(p.alias for p in dependant.query_params)
            todo.extend(dependant.dependencies)
        names = _QUERY_NAMES[id(route)] = frozenset(found)
    return names


async def _field_error(request: Request, exc: FieldError) -> JSONResponse:
    where = "query" if exc.field in request.query_params else "body"
    return _error(422, str(exc), exc.field,
                  [{"loc": [where, exc.field], "msg": str(exc), "type": "value_error", "field": exc.field}])


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return _error(exc.status, str(exc), exc.field, headers=headers)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400:  # FastAPI's "error parsing the body": the body is not JSON
        return _error(422, f"body: not valid JSON ({exc.detail})", "body")
    return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))


async def _value_error(request: Request, exc: ValueError) -> JSONResponse:
    return _error(422, str(exc), "body")


async def _runtime_error(request: Request, exc: RuntimeError) -> JSONResponse:
    logger.warning("%s %s: %s", request.method, request.url.path, exc)
    return _error(503, str(exc))


# -- the application ----------------------------------------------------------------------


class MenaceApi:
    """The API of one stack: its routes, its event feed and the pool that runs blocking calls.

    Args:
        stack: the running ``ServiceStack``.
        token: the bearer token every ``/v1`` route requires.
        executor: runs the blocking calls (the server owns and stops it).
        metrics_auth: ``/metrics`` also requires the token.
        registry: the Prometheus registry ``/metrics`` serves.
        heartbeat: seconds between keep-alive comments on an idle event stream.
        api_url: the API's own address, for ``/v1/status``.
    """

    def __init__(
        self,
        stack: Any,
        token: str,
        executor: Executor,
        *,
        metrics_auth: bool = False,
        registry: Any = REGISTRY,
        heartbeat: float = HEARTBEAT,
        api_url: str | None = None,
    ) -> None:
        self.stack = stack
        self.token = tokens.check_token(token)
        self.executor = executor
        self.metrics_auth = metrics_auth
        self.registry = registry
        self.heartbeat = heartbeat
        self.api_url = api_url
        self.feed = EventFeed(stack.bus)
        self._local = threading.local()
        self.app = self._build()

    # -- plumbing ---------------------------------------------------------------------
    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run a blocking call on the pool; await the result."""
        return asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def _check_token(self, authorization: str | None) -> None:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not tokens.matches(given.strip(), self.token):
            raise ApiError(401, "missing or wrong bearer token (Authorization: Bearer <token>)")

    def _capture(self, topic: str, payload: dict) -> None:
        box = getattr(self._local, "box", None)
        if box is not None:
            box.append(payload)

    @contextmanager
    def _capturing(self) -> Iterator[list[dict]]:
        """Collect the ``memory:new`` payloads this thread's write announces (its memory id)."""
        self._local.box = box = []
        try:
            yield box
        finally:
            self._local.box = None

    @asynccontextmanager
    async def _lifespan(self, app: FastAPI):
        self.feed.attach(asyncio.get_running_loop())
        self.stack.bus.subscribe(events.MEMORY_NEW, self._capture)
        try:
            yield
        finally:
            self.feed.close()
            self.stack.bus.unsubscribe(events.MEMORY_NEW, self._capture)
            self.feed.detach()

    def _build(self) -> FastAPI:
        app = FastAPI(
            title="Menace",
            version=API_VERSION,
            summary="Log runs, ask for predictions and jobs, and follow the learning of a Menace service.",
            lifespan=self._lifespan,
            max_body_size=MAX_BODY_BYTES,
            dependencies=[Depends(refuse_unknown_query)],
        )
        app.add_exception_handler(RequestValidationError, _validation_error)
        app.add_exception_handler(FieldError, _field_error)
        app.add_exception_handler(ApiError, _api_error)
        app.add_exception_handler(StarletteHTTPException, _http_error)
        app.add_exception_handler(ValueError, _value_error)
        app.add_exception_handler(RuntimeError, _runtime_error)

        bearer = HTTPBearer(auto_error=False, description="the token in <data dir>/api_token, or --api-token")

        async def require_token(request: Request, _: Annotated[Any, Security(bearer)] = None) -> None:
            self._check_token(request.headers.get("authorization"))

        router = APIRouter(prefix=f"/{API_VERSION}", dependencies=[Depends(require_token)],
                           responses=ERROR_RESPONSES)
        self._add_writes(router)
        self._add_model(router)
        self._add_jobs(router)
        self._add_events(router)
        self._add_reads(router)
        app.include_router(router)
        self._add_open_routes(app)
        return app

    # -- writes -----------------------------------------------------------------------
    def _add_writes(self, router: APIRouter) -> None:
        stack = self.stack

        @router.post("/runs", response_model=models.RunsOut, status_code=201, tags=["runs"])
        async def log_runs(body: models.RunIn | RunList) -> models.RunsOut:
            """Store one run or a list of runs (one transaction); their run and pathway ids, in order."""
            is_list = isinstance(body, list)
            records = []
            for i, item in enumerate(body if is_list else [body]):
                with _naming("runs", i, is_list):
                    records.append(PathwayRecord(**item.model_dump(exclude_none=True)))
            logged = await self.run(stack.pathway_db.log_runs, records)
            return models.RunsOut(runs=[models.LoggedRunOut(run_id=r.run_id, pathway_id=r.pathway_id) for r in logged])

        @router.post("/interactions", response_model=models.InteractionOut, status_code=201, tags=["memory"])
        async def log_interaction(body: models.InteractionIn) -> models.InteractionOut:
            """Store a prompt/response pair (secrets redacted); its memory id."""

            def store() -> int:
                with self._capturing() as announced:
                    stack.gpt_memory.log_interaction(body.prompt, body.response, body.tags)
                if not announced:
                    raise RuntimeError(f"the interaction was stored but {events.MEMORY_NEW} did not announce it")
                return int(announced[-1]["memory_id"])

            return models.InteractionOut(memory_id=await self.run(store))

    # -- the model ---------------------------------------------------------------------
    def _add_model(self, router: APIRouter) -> None:
        stack = self.stack

        @router.post("/predict", response_model=models.PredictionsOut, tags=["model"])
        async def predict(body: models.PredictIn | QueryList) -> models.PredictionsOut:
            """The success probability of one query or of each in a list, and the model that answered."""
            queries = body if isinstance(body, list) else [body]
            engine = stack.engine

            def answer() -> models.PredictionsOut:
                model, trained = engine.model_name, engine.is_trained
                probabilities = []
                for i, q in enumerate(queries):
                    with _naming("queries", i, isinstance(body, list)):
                        probabilities.append(float(engine.predict_success(q.freq, q.exec_time, q.roi, q.myelination, q.actions)))
                return models.PredictionsOut(probabilities=probabilities, model=model, trained=trained)

            return await self.run(answer)

        @router.post("/explain", response_model=models.ExplanationOut, tags=["model"])
        async def explain(body: models.PredictIn) -> models.ExplanationOut:
            """The success probability of one query, with the inputs that pushed it up or down."""
            from ..explain import explain as explain_prediction

            def answer() -> models.ExplanationOut:
                found = explain_prediction(stack.engine, body.freq, body.exec_time, body.roi, body.myelination, body.actions)
                return models.ExplanationOut(
                    probability=found.probability, model=found.model, trained=found.trained,
                    contributions=[models.ContributionOut(**vars(c)) for c in found.contributions],
                    method=found.method,
                )

            return await self.run(answer)

    # -- jobs -------------------------------------------------------------------------
    def _add_jobs(self, router: APIRouter) -> None:
        coordinator = self.stack.coordinator
        JobIn = models.job_request(tuple(self.stack.engines))  # noqa: N806 - a type

        def job_out(job: Any) -> models.JobOut:
            return models.JobOut(**job.info().to_dict())

        def find(job_id: int) -> Any:
            job = coordinator.job(job_id)
            if job is None:
                raise ApiError(404, f"no job with id {job_id}", "job_id")
            return job

        @router.post("/jobs", response_model=models.JobOut, status_code=202, tags=["jobs"])
        async def submit_job(body: JobIn) -> models.JobOut:  # type: ignore[valid-type]
            """Queue a ``train``, ``evaluate`` or ``auto_train`` job; it runs on the learning worker."""
            options = body.model_dump(exclude_none=True, exclude={"kind", "engine"})
            for name in options.get("candidates", ()):
                if name not in available_models():
                    raise FieldError("candidates", f"candidates: unknown model {name!r}; known: {', '.join(available_models())}")
            job_id = coordinator.submit(JobKind(body.kind), body.engine, **options)
            return job_out(find(job_id))

        @router.get("/jobs", response_model=list[models.JobOut], tags=["jobs"])
        async def list_jobs() -> list[models.JobOut]:
            """Every job of this service run, oldest first."""
            return [job_out(job) for job in coordinator.jobs()]

        @router.get("/jobs/{job_id}", response_model=models.JobOut, responses=NOT_FOUND, tags=["jobs"])
        async def get_job(job_id: JobId) -> models.JobOut:
            """A job's state, progress and result."""
            return job_out(find(job_id))

        @router.delete("/jobs/{job_id}", response_model=models.CancelOut, responses=NOT_FOUND, tags=["jobs"])
        async def cancel_job(job_id: JobId) -> models.CancelOut:
            """Cancel a queued or running job (the live model is left as it was)."""
            job = find(job_id)
            cancelled = bool(coordinator.cancel(job_id))
            return models.CancelOut(cancelled=cancelled, job=job_out(job))

    # -- events -----------------------------------------------------------------------
    def _add_events(self, router: APIRouter) -> None:
        @router.get(
            "/events", tags=["events"], response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "Server-Sent Events: `id:` the event id, `event:` its topic, "
                                            "`data:` the event as JSON (id, ts, topic, payload)"}},
        )
        async def stream_events(
            after: EventId = None,
            follow: bool = True,
            last_event_id: Annotated[int, Header(alias="Last-Event-ID", ge=0, le=MAX_INT)] = None,
        ) -> StreamingResponse:
            """Every event after ``Last-Event-ID`` (a reconnect) or ``after``, then the live ones.

            With neither, the stream starts with the next event published.
            ``follow=false`` ends the stream once it has caught up.
            """
            start = last_event_id if last_event_id is not None else after
            body = self.feed.stream(start, follow=follow, heartbeat=self.heartbeat, run=self.run)
            return StreamingResponse(
                body, media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )

        @router.get("/events/since/{event_id}", response_model=models.EventsOut, tags=["events"])
        async def events_since(
            event_id: Annotated[int, Path(ge=0, le=MAX_INT)],
            limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        ) -> models.EventsOut:
            """Up to ``limit`` stored events after ``event_id``, oldest first."""

            def read() -> models.EventsOut:
                page = self.feed.after(event_id, limit)
                return models.EventsOut(
                    events=[models.EventOut(id=e.id, ts=e.ts, topic=e.topic, payload=e.payload) for e in page],
                    newest_id=self.feed.newest(),
                )

            return await self.run(read)

    # -- reads ------------------------------------------------------------------------
    def _add_reads(self, router: APIRouter) -> None:
        stack = self.stack

        @router.get("/status", response_model=models.StatusOut, tags=["service"])
        async def status() -> models.StatusOut:
            """The service: data directory, engine, model, what it learned, its event ids."""
            return await self.run(self.status)

        @router.get("/counts", response_model=models.CountsOut, tags=["service"])
        async def counts() -> models.CountsOut:
            """How many pathways, runs and memory entries are stored."""

            def read() -> models.CountsOut:
                db = stack.pathway_db
                return models.CountsOut(pathways=db.count_pathways(), runs=db.count_runs(), memory=stack.memory.count())

            return await self.run(read)

        @router.get("/pathways", response_model=list[models.PathwayOut], tags=["pathways"])
        async def pathways(limit: Annotated[int, Query(ge=1, le=100_000)] = 5000) -> list[models.PathwayOut]:
            """Pathways, most frequent first."""
            found = await self.run(lambda: stack.pathway_db.pathways(limit=limit))
            return [models.PathwayOut(**vars(p)) for p in found]

        @router.get("/pathways/find", response_model=models.PathwayOut, responses=NOT_FOUND, tags=["pathways"])
        async def find_pathway(
            actions: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_TEXT, pattern=models.SOME_WORD)],
        ) -> models.PathwayOut:
            """The pathway with exactly these actions (404 if there is none; at most 10,000 characters)."""
            found = await self.run(stack.pathway_db.find, actions)
            if found is None:
                raise ApiError(404, f"no pathway with actions {actions!r:.80}", "actions")
            return models.PathwayOut(**vars(found))

        @router.get("/memory", response_model=list[models.MemoryEntryOut], tags=["memory"])
        async def memory(
            text: Annotated[str, Query(max_length=MAX_QUERY_TEXT, pattern=models.NO_NUL)] = "",
            limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        ) -> list[models.MemoryEntryOut]:
            """Memory entries matching ``text`` (full-text search), or the newest when it is empty."""
            store = stack.memory
            found = await self.run(lambda: store.search(text, limit=limit) if text.strip() else store.latest(limit))
            return [models.MemoryEntryOut(**vars(e)) for e in found]

        @router.get("/evaluations", response_model=list[dict[str, Any]], tags=["model"])
        async def evaluations() -> list[dict[str, Any]]:
            """Every stored evaluation of the main engine, oldest first (``cv_score``, ``holdout_score``, ``ts``, ...)."""
            history = list(stack.engine.evaluation_history)
            return [dict(entry) for entry in history if isinstance(entry, dict)]

        @router.get("/prequential", response_model=list[dict[str, Any]], tags=["model"])
        async def prequential() -> list[dict[str, Any]]:
            """The main engine's kept test-then-train figures, oldest first (``accuracy``,
            ``baseline``, ``log_loss``, ``n_window``, ``n_total``, ``model``, ``ts``, ...)."""
            return await self.run(stack.engine.prequential_history)

    def status(self) -> models.StatusOut:
        """The ``/v1/status`` answer (blocking)."""
        stack = self.stack
        engine = stack.engine
        learned = stack.coordinator.stats().get("examples", {})
        newest_learned = getattr(engine, "newest_learned_run_id", None)
        return models.StatusOut(
            location=stack.settings.store_location,
            engine=engine.name,
            model=engine.model_name,
            trained=bool(engine.is_trained),
            examples_learned=int(learned.get(engine.name, 0)),
            n_seen=int(getattr(engine, "n_seen", 0)),
            model_examples=int(engine.n_seen) if engine.is_trained else 0,
            learned_through=int(newest_learned()) if callable(newest_learned) else 0,
            metrics_url=stack.metrics_url,
            api_url=self.api_url,
            learner=True,
            started=stack.started,
            session_event_id=int(getattr(stack, "session_event_id", 0)),
            newest_event_id=self.feed.newest(),
            journal=self.feed.journal,
            queue_depth=stack.coordinator.queue_depth,
            pid=os.getpid(),
            api_version=API_VERSION,
        )

    # -- open routes --------------------------------------------------------------------
    def _add_open_routes(self, app: FastAPI) -> None:
        @app.get("/healthz", response_model=models.HealthOut, tags=["service"])
        async def healthz() -> models.HealthOut:
            """Whether the service answers (no token needed)."""
            return models.HealthOut(status="ok")

        @app.get("/metrics", include_in_schema=False)
        async def metrics(request: Request) -> Response:
            if self.metrics_auth:
                self._check_token(request.headers.get("authorization"))
            encoder, content_type = choose_encoder(request.headers.get("accept", ""))
            body = await self.run(encoder, self.registry)
            return Response(body, media_type=content_type)
