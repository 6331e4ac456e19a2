"""ModelStore: where an engine's live model is saved, and how it is written and read back.

One file (or directory, for the transformer) per model family in
``model_dir``: ``<model_dir>/<family><suffix>``. A save writes a new file
beside the old one and renames it into place, so a reader finds the old
model or the new one, never half of one. A load that fails (a damaged file,
an untrusted type, metadata that does not fit this engine) is logged in one
line naming the file, and the engine starts untrained.

The metadata saved with a model (:func:`model_meta`) says what it was
trained on (feature set, embedder, number of features) and how far it got
(``n_seen``, ``trained_through_run_id``, ``learned_runs``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from .models import ModelFamily, available_models, get_family

logger = logging.getLogger(__name__)

#: Bump when the saved metadata changes meaning.
MODEL_FORMAT = 1
#: Metadata that must match the engine for a saved model to be used.
MUST_MATCH = ("format", "model", "features", "embedder", "n_features")


def model_meta(
    engine: str, family: ModelFamily, *, features: str, embedder: str | None, n_features: int,
    n_seen: int, trained_through_run_id: int, learned_runs: list[list[int]],
    prequential: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON-able metadata saved with a model."""
    return {
        "prequential": prequential,
        "format": MODEL_FORMAT,
        "engine": engine,
        "model": family.name,
        "features": features,
        "embedder": embedder,
        "n_features": n_features,
        "n_seen": int(n_seen),
        "trained_through_run_id": int(trained_through_run_id),
        "learned_runs": learned_runs,
        "saved_at": time.time(),
    }


#: In ``model_dir``: the model an engine uses (an ``auto_train`` choice survives a restart).
CHOICE_FILE = "live.json"


class ModelStore:
    """Saved models of one engine in ``model_dir`` (``None``: nothing is saved)."""

    def chosen(self) -> str | None:
        """The model name remembered by :meth:`remember_choice`, or ``None``."""
        if self.model_dir is None:
            return None
        path = self.model_dir / CHOICE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("%s: ignoring unreadable %s: %s", self.engine, path, exc)
            return None
        model = data.get("model") if isinstance(data, dict) else None
        if not isinstance(model, str) or model not in available_models():
            logger.warning("%s: ignoring %s: %r is not a model", self.engine, path, model)
            return None
        return model

    def remember_choice(self, model: str) -> None:
        """Remember that the engine now uses ``model`` (written atomically; failures logged)."""
        if self.model_dir is None:
            return
        path = self.model_dir / CHOICE_FILE
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"model": model, "ts": time.time()}), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            logger.warning("%s: could not remember the model choice in %s: %s", self.engine, path, exc)

    def __init__(self, engine: str, model_dir: Path | None) -> None:
        self.engine = engine
        self.model_dir = model_dir

    def path(self, model: str | ModelFamily) -> Path | None:
        """Where the model ``model`` (a name or a family) is saved."""
        if self.model_dir is None:
            return None
        family = get_family(model) if isinstance(model, str) else model
        return self.model_dir / f"{family.name}{family.file_suffix}"

    def save(self, family: ModelFamily, estimator: Any, meta: dict[str, Any]) -> Path | None:
        """Write ``estimator`` atomically; the path, or ``None`` (logged) when it failed."""
        path = self.path(family)
        if path is None:
            return None
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            family.save(estimator, meta, tmp)
            if tmp.is_dir() and path.is_dir():  # a directory cannot be os.replace'd onto another
                old = path.with_name(f".{path.name}.{os.getpid()}.old")
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        except Exception:
            logger.exception("%s: could not save model to %s", self.engine, path)
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
            return None
        return path

    def load(self, family: ModelFamily, expected: dict[str, Any]) -> tuple[Any, dict[str, Any]] | None:
        """The saved ``family`` model and its metadata, or ``None`` (none saved, or unusable: logged)."""
        path = self.path(family)
        if path is None or not path.exists():
            return None
        try:
            estimator, meta = family.load(path)
        except Exception as exc:
            logger.error(
                "%s: saved model %s cannot be loaded (%s: %s); starting untrained",
                self.engine, path, type(exc).__name__, exc,
            )
            return None
        for key in MUST_MATCH:
            if meta.get(key) != expected[key]:
                logger.warning(
                    "%s: saved model %s has %s=%r, this engine needs %r; starting untrained",
                    self.engine, path, key, meta.get(key), expected[key],
                )
                return None
        return estimator, meta
