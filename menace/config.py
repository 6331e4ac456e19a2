"""Configuration defaults, in one place.

Every setting has a default, an environment variable and (in the service and
the desktop app) a command-line flag; flags beat the environment, which beats
the default.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir

from .database_url import check_database_url, redact
from .errors import FieldError
from .validation import check_number, check_positive_int, check_text, check_token, expand_path

#: File names inside a data directory.
PATHWAYS_DB = "pathways.db"
MEMORY_DB = "mem.db"
CODE_DB = "code.db"
WORKFLOWS_DB = "workflows.db"
EVENTS_DB = "events.db"
MODELS_DIR = "models"
EVALUATIONS_FILE = "evaluations.jsonl"
PREQUENTIAL_FILE = "prequential.jsonl"
API_TOKEN_FILE = "api_token"
LEARNER_LOCK = "learner.lock"
LEARNER_FILE = "learner.json"
SERVICE_STATE_FILE = "service_state.json"

DEFAULT_MODEL = "logreg"
DEFAULT_METRICS_ADDR = "127.0.0.1"
DEFAULT_METRICS_PORT = 8001
#: Periodic evaluation: after this many examples learned, and/or this often (s) while learning.
DEFAULT_EVAL_EVERY = 1000
DEFAULT_EVAL_INTERVAL = 600.0
#: A periodic evaluation reads at most this many runs (the newest), so it stays seconds long.
DEFAULT_EVAL_MAX_EXAMPLES = 20_000
#: Most of the time periodic evaluations may take: after one of d seconds the evaluator rests
#: d * (1 / share - 1) before the next, so a flood of runs (one due every 1,000) cannot keep a
#: core evaluating and slow the learning and the API it shares the process with.
EVAL_MAX_SHARE = 0.2
#: Runs in the rolling test-then-train (prequential) figures.
DEFAULT_PREQUENTIAL_WINDOW = 500
#: BLAS threads (numpy's and scipy's OpenBLAS) of a process that runs the stack. One: the
#: matrices of incremental updates are small, and OpenBLAS's extra threads spin between calls,
#: taking a core from the bots that log (a service catching up on 60,000 stored runs cost
#: 91-119 us of CPU per run with numpy's default of one thread per core, 41-60 us with one).
DEFAULT_BLAS_THREADS = 1
#: What a drift does: "retrain" on the runs since the change, or "none" (report only).
DRIFT_POLICIES = ("retrain", "none")
DEFAULT_DRIFT_POLICY = "retrain"
#: A drift retrain fits the runs since the change, at least and at most this many.
DRIFT_RETRAIN_MIN, DRIFT_RETRAIN_MAX = 200, 5000
#: Estimated bytes of events the training queue holds before it refuses more (see
#: menace.training_queue.payload_bytes); with the count limit, the queue's memory bound.
DEFAULT_MAX_QUEUE_BYTES = 64 << 20
#: The event journal keeps events this many days and at most this many MB (0: no limit).
DEFAULT_JOURNAL_MAX_AGE_DAYS = 30
DEFAULT_JOURNAL_MAX_MB = 256
#: Least time between two learning:prequential events of one engine, seconds.
PREQUENTIAL_EVENT_INTERVAL = 0.5


def default_data_dir() -> Path:
    """``MENACE_DATA_DIR`` if set, else the per-user data directory (e.g. ~/.local/share/menace)."""
    env = os.environ.get("MENACE_DATA_DIR")
    return expand_path("MENACE_DATA_DIR", env) if env else Path(user_data_dir("menace", appauthor=False))


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 1/0, true/false, yes/no or on/off, got {raw!r}")


def _env_path(name: str) -> Path | None:
    raw = os.environ.get(name)
    return expand_path(name, raw) if raw else None


#: Most model parameters one setting carries, and the longest text value one may have.
MAX_MODEL_PARAMS = 64
MAX_MODEL_PARAM_TEXT = 4096


def parse_model_param(text: str, where: str = "--model-param") -> tuple[str, Any]:
    """``NAME=VALUE`` as ``(name, value)``: a VALUE that reads as a JSON number, ``true`` /
    ``false``, ``null`` or a quoted string is that; any other VALUE is text (a path, say).

    ``FieldError`` (``model_params``) for anything else, naming ``where`` it came from.
    """
    name, sep, raw = str(text).partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or not name.isidentifier():
        raise FieldError("model_params", f"{where} takes NAME=VALUE with NAME a parameter name, got {text!r:.80}")
    if not raw:
        raise FieldError("model_params", f"{where} {name}= has no value")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return name, _check_model_param(name, value, where)


def _check_model_param(name: str, value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FieldError("model_params", f"{where} {name} must be a finite number, got {value!r}")
        return value
    if isinstance(value, str):
        return check_text(f"model_params[{name!r}]", value, allow_empty=False, max_len=MAX_MODEL_PARAM_TEXT)
    raise FieldError(
        "model_params", f"{where} {name} must be a number, true/false, null or text, got {type(value).__name__}"
    )


def check_model_params(params: Any) -> dict[str, Any]:
    """A copy of ``params`` (parameter name -> number, bool, ``None`` or text), checked."""
    if not isinstance(params, dict):
        raise FieldError("model_params", f"model_params must be a dict, got {type(params).__name__}")
    if len(params) > MAX_MODEL_PARAMS:
        raise FieldError("model_params", f"model_params has {len(params)} entries; at most {MAX_MODEL_PARAMS}")
    checked = {}
    for name, value in params.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise FieldError("model_params", f"model_params names must be parameter names, got {name!r:.80}")
        checked[name] = _check_model_param(name, value, "model_params")
    return checked


def env_model_params() -> dict[str, Any]:
    """``MENACE_MODEL_PARAMS``: ``NAME=VALUE`` pairs separated by ``;``."""
    raw = os.environ.get("MENACE_MODEL_PARAMS") or ""
    return dict(parse_model_param(part, "MENACE_MODEL_PARAMS") for part in raw.split(";") if part.strip())


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


@dataclass
class Settings:
    """Everything needed to start the stack on a data directory.

    ``model`` ``None`` (the default): the model the engine used last (an
    auto-train's choice is remembered), else ``logreg``. ``model_params``:
    settings of that model's family (e.g. ``{"model_path": "/models/bert",
    "epochs": 2}`` for ``transformer``); they need ``model`` named.
    ``eval_every_examples`` / ``eval_every_seconds``: evaluate after that many
    learned examples / that many seconds (0 turns each trigger off; both on by
    default); ``eval_max_examples``: a periodic evaluation reads at most the
    newest that many runs (0: all). ``prequential_window``: runs in the rolling
    test-then-train figures. ``drift_policy``: ``retrain`` or ``none``.
    ``metrics_port`` 0 means no metrics server. ``blas_threads``: threads of
    numpy's and scipy's BLAS in the process that runs the stack (default 1; 0:
    the libraries' own default, one per core).

    The HTTP API (``api``) is served on the metrics address and port. Its
    bearer token is ``api_token``, or the one in ``<data dir>/api_token``
    (made on first start). ``metrics_auth``: ``/metrics`` also requires the
    token. ``tls_cert`` / ``tls_key``: serve HTTPS (both or neither).
    ``journal_max_age_days`` / ``journal_max_mb``: the event journal drops events older
    than that / beyond that size, oldest first (0: no such limit; defaults 30 days, 256 MB).

    ``database_url`` (``postgresql://...``): every store, the saved models,
    the evaluations and the learner lease live in that PostgreSQL database
    instead of the data directory, which then keeps only what is per host
    (the API token, the test-then-train curve). ``None``: SQLite files in
    ``data_dir``.
    """

    data_dir: Path = field(default_factory=default_data_dir)
    model: str | None = field(default_factory=lambda: os.environ.get("MENACE_MODEL") or None)
    model_params: dict[str, Any] = field(default_factory=env_model_params)
    eval_every_examples: int = field(default_factory=lambda: _env_int("MENACE_EVAL_EVERY", DEFAULT_EVAL_EVERY))
    eval_every_seconds: float = field(
        default_factory=lambda: _env_float("MENACE_EVAL_INTERVAL", DEFAULT_EVAL_INTERVAL)
    )
    eval_max_examples: int = field(
        default_factory=lambda: _env_int("MENACE_EVAL_MAX_EXAMPLES", DEFAULT_EVAL_MAX_EXAMPLES)
    )
    prequential_window: int = field(
        default_factory=lambda: _env_int("MENACE_PREQUENTIAL_WINDOW", DEFAULT_PREQUENTIAL_WINDOW)
    )
    drift_policy: str = field(default_factory=lambda: os.environ.get("MENACE_DRIFT_POLICY") or DEFAULT_DRIFT_POLICY)
    blas_threads: int = field(default_factory=lambda: _env_int("MENACE_BLAS_THREADS", DEFAULT_BLAS_THREADS))
    metrics_addr: str = field(
        default_factory=lambda: os.environ.get("MENACE_METRICS_ADDR", DEFAULT_METRICS_ADDR)
    )
    metrics_port: int = field(
        default_factory=lambda: _env_int("MENACE_METRICS_PORT", DEFAULT_METRICS_PORT)
    )
    journal: bool = True
    api: bool = field(default_factory=lambda: _env_flag("MENACE_API", True))
    api_token: str | None = field(
        default_factory=lambda: os.environ.get("MENACE_API_TOKEN") or None, repr=False
    )
    metrics_auth: bool = field(default_factory=lambda: _env_flag("MENACE_METRICS_AUTH", False))
    tls_cert: Path | None = field(default_factory=lambda: _env_path("MENACE_TLS_CERT"))
    tls_key: Path | None = field(default_factory=lambda: _env_path("MENACE_TLS_KEY"))
    journal_max_age_days: float = field(
        default_factory=lambda: _env_float("MENACE_JOURNAL_MAX_AGE_DAYS", DEFAULT_JOURNAL_MAX_AGE_DAYS)
    )
    journal_max_mb: float = field(
        default_factory=lambda: _env_float("MENACE_JOURNAL_MAX_MB", DEFAULT_JOURNAL_MAX_MB)
    )
    database_url: str | None = field(
        default_factory=lambda: os.environ.get("MENACE_DATABASE_URL") or None, repr=False
    )

    def __post_init__(self) -> None:
        self.data_dir = expand_path("data_dir", check_text("data_dir", str(self.data_dir), allow_empty=False))
        if self.model is not None:
            self.model = check_text("model", self.model, allow_empty=False, max_len=100).strip()
        self.model_params = check_model_params(self.model_params)
        if self.model_params and self.model is None:
            raise FieldError(
                "model_params", f"model_params {sorted(self.model_params)} are settings of one model: "
                "name it too (--model / MENACE_MODEL)"
            )
        check_positive_int("eval_every_examples", self.eval_every_examples, minimum=0)
        check_positive_int("eval_max_examples", self.eval_max_examples, minimum=0)
        check_positive_int("prequential_window", self.prequential_window, minimum=1)
        check_positive_int("blas_threads", self.blas_threads, minimum=0)
        if self.drift_policy not in DRIFT_POLICIES:
            raise FieldError(
                "drift_policy", f"drift_policy must be one of {', '.join(DRIFT_POLICIES)}, got {self.drift_policy!r:.60}"
            )
        self.eval_every_seconds = check_number("eval_every_seconds", self.eval_every_seconds, minimum=0.0)
        self.metrics_addr = check_text("metrics_addr", self.metrics_addr, allow_empty=False, max_len=255)
        check_positive_int("metrics_port", self.metrics_port, minimum=0)
        self.journal_max_age_days = check_number("journal_max_age_days", self.journal_max_age_days, minimum=0.0)
        self.journal_max_mb = check_number("journal_max_mb", self.journal_max_mb, minimum=0.0)
        if self.metrics_port > 65535:
            raise FieldError("metrics_port", f"metrics_port must be <= 65535, got {self.metrics_port}")
        if self.api_token is not None:
            check_token(self.api_token, "api_token")
        for name in ("tls_cert", "tls_key"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, expand_path(name, check_text(name, str(value), allow_empty=False)))
        if self.database_url is not None:
            check_database_url(self.database_url)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise FieldError("tls_cert", "tls_cert and tls_key go together: give both or neither")

    def path(self, name: str) -> Path:
        return self.data_dir / name

    @property
    def store_location(self) -> str:
        """Where the stores live, for messages: the database URL without its password, or the data directory."""
        if self.database_url:
            return redact(self.database_url)
        return str(self.data_dir)
