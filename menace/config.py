"""Configuration defaults, in one place.

Every setting has a default, an environment variable and (in the service and
the desktop app) a command-line flag; flags beat the environment, which beats
the default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_data_dir

from .validation import check_number, check_positive_int, check_text, check_token, expand_path

#: File names inside a data directory.
PATHWAYS_DB = "pathways.db"
MEMORY_DB = "mem.db"
CODE_DB = "code.db"
WORKFLOWS_DB = "workflows.db"
EVENTS_DB = "events.db"
MODELS_DIR = "models"
EVALUATIONS_FILE = "evaluations.jsonl"
API_TOKEN_FILE = "api_token"
LEARNER_LOCK = "learner.lock"
LEARNER_FILE = "learner.json"

DEFAULT_MODEL = "logreg"
DEFAULT_METRICS_ADDR = "127.0.0.1"
DEFAULT_METRICS_PORT = 8001


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

    ``eval_every_examples`` / ``eval_every_seconds``: evaluate after that many
    learned examples / that many seconds; 0 turns each trigger off.
    ``metrics_port`` 0 means no metrics server.

    The HTTP API (``api``) is served on the metrics address and port. Its
    bearer token is ``api_token``, or the one in ``<data dir>/api_token``
    (made on first start). ``metrics_auth``: ``/metrics`` also requires the
    token. ``tls_cert`` / ``tls_key``: serve HTTPS (both or neither).
    """

    data_dir: Path = field(default_factory=default_data_dir)
    model: str = field(default_factory=lambda: os.environ.get("MENACE_MODEL", DEFAULT_MODEL))
    eval_every_examples: int = field(default_factory=lambda: _env_int("MENACE_EVAL_EVERY", 0))
    eval_every_seconds: float = field(
        default_factory=lambda: _env_float("MENACE_EVAL_INTERVAL", 0.0)
    )
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

    def __post_init__(self) -> None:
        self.data_dir = expand_path("data_dir", check_text("data_dir", str(self.data_dir), allow_empty=False))
        self.model = check_text("model", self.model, allow_empty=False, max_len=100).strip()
        check_positive_int("eval_every_examples", self.eval_every_examples, minimum=0)
        self.eval_every_seconds = check_number("eval_every_seconds", self.eval_every_seconds, minimum=0.0)
        self.metrics_addr = check_text("metrics_addr", self.metrics_addr, allow_empty=False, max_len=255)
        check_positive_int("metrics_port", self.metrics_port, minimum=0)
        if self.metrics_port > 65535:
            raise ValueError(f"metrics_port must be <= 65535, got {self.metrics_port}")
        if self.api_token is not None:
            check_token(self.api_token, "api_token")
        for name in ("tls_cert", "tls_key"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, expand_path(name, check_text(name, str(value), allow_empty=False)))
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both or neither")

    def path(self, name: str) -> Path:
        return self.data_dir / name
