"""Embedders and the embedding cache."""

from __future__ import annotations

import numpy as np
import pytest

from menace.embeddings import HashingEmbedder, default_embedder
from menace.menace_memory_manager import MenaceMemoryManager


class CountingEmbedder:
    """The hashing embedder, counting the texts it is asked to embed."""

    def __init__(self) -> None:
        self._inner = HashingEmbedder()
        self.name = "counting-hashing"
        self.dim = self._inner.dim
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return self._inner.encode(texts)


def test_hashing_embedder_is_deterministic_and_normalised():
    embedder = HashingEmbedder()
    a = embedder.encode(["fetch->parse->store", "fetch->parse->store", ""])
    assert a.shape == (3, 256)
    assert a.dtype == np.float32
    assert np.array_equal(a[0], a[1])
    assert np.linalg.norm(a[0]) == pytest.approx(1.0, abs=1e-6)
    assert np.linalg.norm(a[2]) == 0.0  # nothing to embed: a zero vector, not NaN
    assert np.array_equal(HashingEmbedder().encode(["fetch->parse->store"])[0], a[0])


def test_default_embedder_follows_the_environment(monkeypatch):
    monkeypatch.setenv("MENACE_EMBEDDER", "hashing")
    assert default_embedder().name == "hashing-256"
    assert default_embedder("HASHING").name == "hashing-256"
    with pytest.raises(ValueError, match="embedder"):
        default_embedder("glove")


def test_second_embed_of_the_same_text_does_not_call_the_embedder(tmp_path):
    counting = CountingEmbedder()
    mm = MenaceMemoryManager(tmp_path / "mem.db", embedder=counting)
    first = mm.embed("fetch->parse")
    second = mm.embed("fetch->parse")
    assert np.array_equal(first, second)
    assert counting.calls == [["fetch->parse"]]

    batch = mm.embed_many(["fetch->parse", "new text", "new text"])
    assert counting.calls == [["fetch->parse"], ["new text"]]
    assert batch.shape == (3, counting.dim)
    assert np.array_equal(batch[1], batch[2])
    assert mm.embedding_cache_size() == 2
    mm.close()

    # The cache is on disk: a new manager (a restart) embeds nothing again.
    again = CountingEmbedder()
    reopened = MenaceMemoryManager(tmp_path / "mem.db", embedder=again)
    assert np.array_equal(reopened.embed("new text"), batch[1])
    assert again.calls == []
    reopened.close()


def test_cache_is_kept_per_embedder(tmp_path):
    path = tmp_path / "mem.db"
    with MenaceMemoryManager(path, embedder=CountingEmbedder()) as mm:
        mm.embed("same text")
    other = CountingEmbedder()
    other.name = "another-model"
    with MenaceMemoryManager(path, embedder=other) as mm:
        mm.embed("same text")
        assert other.calls == [["same text"]]


@pytest.mark.slow
def test_minilm_gives_384_dim_normalised_vectors_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    mm = MenaceMemoryManager(tmp_path / "mem.db", embedder="minilm")
    assert mm.embedder.name.startswith("minilm")
    vectors = mm.embed_many(
        [
            "The cat sits on the mat.",
            "A kitten is resting on the rug.",
            "Quarterly tax filing deadline for corporations.",
        ]
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > unrelated + 0.2
    assert mm.embedding_cache_size() == 3
    mm.close()


def test_embed_refuses_what_is_not_text(tmp_path):
    counting = CountingEmbedder()
    with MenaceMemoryManager(tmp_path / "mem.db", embedder=counting) as mm:
        with pytest.raises(ValueError, match="text"):
            mm.embed(b"bytes")
        with pytest.raises(ValueError, match=r"texts\[1\]"):
            mm.embed_many(["ok", 5])
        with pytest.raises(ValueError, match="texts"):
            mm.embed_many("one string")
        assert counting.calls == []
        assert mm.embedding_cache_size() == 0
