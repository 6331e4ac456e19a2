"""ModelStore: where an engine's live model is saved, and how it is written and read back.

One file (or directory, for the transformer) per model family in
``model_dir``: ``<model_dir>/<family><suffix>``. A save writes a new file
(``0600``, a random name made exclusively) beside the old one and renames it
into place, so a reader finds the old model or the new one, never half of
one; a directory model is saved as a new version behind a symbolic link
(:mod:`menace.model_versions`). A load that fails (a damaged file, an
untrusted type, a file expanding beyond :func:`max_model_bytes`, metadata
that does not fit this engine or cannot be true) is logged in one line
naming the file, and the engine starts untrained. A model that would expand
beyond the limit is not saved either (logged; the previous file stays).

The metadata saved with a model (:func:`model_meta`) says what it was
trained on (feature set, embedder, number of features) and how far it got
(``n_seen``, ``trained_through_run_id``, ``learned_runs``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import zipfile
from pathlib import Path
from typing import Any

from . import model_versions
from .errors import UnsafePathError
from .files import atomic_write, check_owned_file, private_dir, read_private, temporary_path
from .models import ModelFamily, available_models, get_family
from .validation import MAX_INT

logger = logging.getLogger(__name__)

#: Bump when the saved metadata changes meaning.
MODEL_FORMAT = 1
#: Metadata that must match the engine for a saved model to be used.
MUST_MATCH = ("format", "model", "features", "embedder", "n_features")
#: Default of :func:`max_model_bytes`: 1 GiB expanded (a forest of 100 trees on ~50,000 runs
#: is a few hundred MB; the transformer's MiniLM directory about 90 MB).
DEFAULT_MAX_MODEL_BYTES = 1 << 30
#: Most members a saved model file (a zip) may have.
MAX_MODEL_MEMBERS = 100_000


def max_model_bytes() -> int:
    """Largest expanded size of a saved model, bytes: ``MENACE_MAX_MODEL_BYTES`` or 1 GiB.

    Loading a larger one is refused before it is read (a small file can expand
    to gigabytes), and a model that would be larger is not saved.
    """
    raw = os.environ.get("MENACE_MAX_MODEL_BYTES", "")
    try:
        value = int(raw) if raw else DEFAULT_MAX_MODEL_BYTES
    except ValueError:
        raise ValueError(f"MENACE_MAX_MODEL_BYTES must be a number of bytes, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"MENACE_MAX_MODEL_BYTES must be >= 1, got {value}")
    return value


class ModelTooLarge(ValueError):
    """A saved model expands beyond :func:`max_model_bytes`."""


def expanded_size(path: Path) -> int:
    """What loading ``path`` reads, bytes: a zip's declared uncompressed sizes (the members
    cannot yield more), a directory's files, or the file's size."""
    if path.is_dir():
        total = 0
        for root, _dirs, files in os.walk(path):
            total += sum(os.lstat(os.path.join(root, name)).st_size for name in files)
        return total
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > MAX_MODEL_MEMBERS:
                raise ModelTooLarge(f"{path} has {len(members)} members, at most {MAX_MODEL_MEMBERS}")
            return sum(member.file_size for member in members)
    return path.stat().st_size


def check_size(path: Path, limit: int) -> None:
    """Raise :class:`ModelTooLarge` if ``path`` expands beyond ``limit`` bytes."""
    size = expanded_size(path)
    if size > limit:
        raise ModelTooLarge(
            f"{path} expands to {size:,} bytes, more than the limit of {limit:,} "
            "(MENACE_MAX_MODEL_BYTES)"
        )


def _count(meta: dict[str, Any], key: str) -> None:
    value = meta.get(key)
    if type(value) is not int or not 0 <= value <= MAX_INT:
        raise ValueError(f"{key}={value!r:.60} is not an integer in 0..{MAX_INT}")


def check_meta(meta: Any) -> None:
    """Raise ``ValueError`` naming the key if saved metadata cannot be true (a count that is
    not a whole number, a run id beyond SQLite's integers, a time that is not a number)."""
    if not isinstance(meta, dict):
        raise ValueError(f"metadata is {type(meta).__name__}, not a dict")
    _count(meta, "n_seen")
    _count(meta, "trained_through_run_id")
    if not isinstance(meta.get("learned_runs") or [], list):
        raise ValueError(f"learned_runs={meta.get('learned_runs')!r:.60} is not a list")
    saved_at = meta.get("saved_at")
    if saved_at is not None and (
        isinstance(saved_at, bool) or not isinstance(saved_at, int | float) or not math.isfinite(saved_at)
    ):
        raise ValueError(f"saved_at={saved_at!r:.60} is not a time")
    if meta.get("prequential") is not None and not isinstance(meta["prequential"], dict):
        raise ValueError("prequential is not a dict")


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
    """Saved models of one engine in ``model_dir`` (``None``: nothing is saved).

    ``max_bytes``: the largest expanded model size (default :func:`max_model_bytes`).
    """

    def __init__(self, engine: str, model_dir: Path | None, max_bytes: int | None = None) -> None:
        self.engine = engine
        self.model_dir = model_dir
        self.max_bytes = max_bytes if max_bytes is not None else max_model_bytes()

    def chosen(self) -> str | None:
        """The model name remembered by :meth:`remember_choice`, or ``None``."""
        if self.model_dir is None:
            return None
        path = self.model_dir / CHOICE_FILE
        try:
            data = json.loads(read_private(path))
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
        try:
            private_dir(self.model_dir)
            atomic_write(path, json.dumps({"model": model, "ts": time.time()}).encode())
        except OSError as exc:
            logger.warning("%s: could not remember the model choice in %s: %s", self.engine, path, exc)

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
        try:
            private_dir(self.model_dir)
            if family.saves_directory:
                model_versions.save(path, lambda version: self._write(family, estimator, meta, version))
            else:
                self._save_file(family, estimator, meta, path)
        except ModelTooLarge as exc:
            logger.error("%s: not saving the model: %s; the previous file stays", self.engine, exc)
            return None
        except Exception:
            logger.exception("%s: could not save model to %s", self.engine, path)
            return None
        return path

    def _write(self, family: ModelFamily, estimator: Any, meta: dict[str, Any], target: Path) -> None:
        family.save(estimator, meta, target)
        check_size(target, self.max_bytes)

    def _save_file(self, family: ModelFamily, estimator: Any, meta: dict[str, Any], path: Path) -> None:
        tmp = temporary_path(path)  # 0600, a random name, made exclusively
        try:
            self._write(family, estimator, meta, tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def load(self, family: ModelFamily, expected: dict[str, Any]) -> tuple[Any, dict[str, Any]] | None:
        """The saved ``family`` model and its metadata, or ``None`` (none saved, or unusable: logged)."""
        path = self.path(family)
        if path is None or (not family.saves_directory and not os.path.lexists(path)):
            return None
        try:
            loaded = self._read(family, path)
        except Exception as exc:
            logger.error(
                "%s: saved model %s cannot be loaded (%s: %s); starting untrained",
                self.engine, path, type(exc).__name__, exc,
            )
            return None
        if loaded is None:
            return None
        estimator, meta = loaded
        for key in MUST_MATCH:
            if meta.get(key) != expected[key]:
                logger.warning(
                    "%s: saved model %s has %s=%r, this engine needs %r; starting untrained",
                    self.engine, path, key, meta.get(key), expected[key],
                )
                return None
        return estimator, meta

    def _read(self, family: ModelFamily, path: Path) -> tuple[Any, dict[str, Any]] | None:
        if family.saves_directory:
            with model_versions.reading(path) as version:
                if version is None:
                    return None
                return self._read_checked(family, version)
        if path.is_dir() or path.is_symlink():
            raise UnsafePathError(f"{path} is not a plain file")
        check_owned_file(path, os.lstat(path))
        return self._read_checked(family, path)

    def _read_checked(self, family: ModelFamily, path: Path) -> tuple[Any, dict[str, Any]]:
        check_size(path, self.max_bytes)  # before a byte of it is expanded
        estimator, meta = family.load(path)
        try:
            check_meta(meta)
        except ValueError as exc:
            raise ValueError(f"its metadata cannot be true: {exc}") from None
        return estimator, meta
