"""EmbeddingPrefetcher: embeds new text on its own thread, ahead of training.

A run whose action text has not been embedded yet would make the training
worker wait for the embedder (tens of milliseconds with MiniLM) and hold up
every run behind it. The prefetcher gates such runs: the queue parks them
under their text, this thread embeds the text (in batches of up to
:data:`BATCH` texts) into the memory manager's cache, then releases them,
while the runs behind are learned. It also embeds the text of ``memory:new``
and ``code:new`` events (handed to it on the queue's side), which warms the
cache that vector search reads. It owns no model.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable

from . import events
from .protocols import EmbeddingSource
from .training_queue import Input, TrainingQueue

logger = logging.getLogger(__name__)

#: Most texts per call of the embedder.
BATCH = 256
#: Action texts remembered as embedded; beyond this the memory starts afresh.
READY_TEXTS_LIMIT = 100_000


def warm_up(memory: EmbeddingSource | None, warming: threading.Event) -> None:
    """Load the embedder now rather than on the first event (MiniLM takes seconds).

    ``warming`` is set meanwhile: a model load in torch cannot be
    interrupted, so whoever stops the thread waits for it.
    """
    embedder = getattr(memory, "embedder", None)
    if embedder is None or not callable(getattr(embedder, "encode", None)):
        return
    started = time.perf_counter()
    warming.set()
    try:
        embedder.encode(["warm up"])
    except Exception as exc:
        logger.warning("could not warm up the embedder %s: %s", getattr(embedder, "name", "?"), exc)
        return
    finally:
        warming.clear()
    logger.debug("embedder warmed up in %.2f s", time.perf_counter() - started)


class EmbeddingPrefetcher:
    """See the module doc.

    Args:
        queue: the training queue whose runs it gates and releases.
        memory: the embedding source whose cache it fills.
        needed: whether any engine's features use the embedding (else runs are
            released without embedding).
        embed_texts: embeds the texts of ``memory:new`` / ``code:new`` events
            (the coordinator's, which counts and reports failures).
    """

    THREAD_NAME = "menace-embedding-prefetch"

    def __init__(
        self,
        queue: TrainingQueue,
        memory: EmbeddingSource,
        needed: Callable[[], bool],
        embed_texts: Callable[[list[str]], None],
    ) -> None:
        self.queue = queue
        self.memory = memory
        self.needed = needed
        self.embed_texts = embed_texts
        self.warming = threading.Event()
        self._ready: set[str] = set()  # action texts already in the embedding cache
        self._wanted: dict[str, None] = {}  # ordered set of texts to embed
        self._thread: threading.Thread | None = None
        queue.gate = self.gate

    # -- called by the queue and the coordinator, holding queue.cond ------------------------
    def note(self, item: Input) -> None:
        """A run was queued: embed its text soon if it is new."""
        text = item.payload["actions"].strip()
        if text not in self._ready:
            self._wanted[text] = None
            self.queue.cond.notify_all()

    def gate(self, item: Input) -> str | None:
        """The queue's gate: park a run whose text is not embedded yet."""
        if item.topic != events.PATHWAY_NEW:
            return None
        text = item.payload["actions"].strip()
        if text in self._ready:
            return None
        self._wanted.setdefault(text, None)
        return text

    # -- the thread ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.THREAD_NAME, daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def _run(self) -> None:
        logger.debug("embedding prefetch running")
        warm_up(self.memory, self.warming)
        queue = self.queue
        while True:
            with queue.cond:
                while not self._wanted and not queue.has_side() and not queue.stopping:
                    queue.cond.wait(0.5)
                if queue.stopping:
                    break
                texts = list(itertools.islice(self._wanted, BATCH))
                for text in texts:
                    del self._wanted[text]
                others = [] if texts else queue.take_side(BATCH)
            if texts:
                self._prefetch(texts)
            if others:
                self._embed_side(others)
        logger.debug("embedding prefetch finished")

    def _prefetch(self, texts: list[str]) -> None:
        if self.needed():
            try:
                self.memory.embed_many(texts)
            except Exception as exc:  # the worker embeds them inline and reports what fails
                logger.warning("could not prefetch the embeddings of %d texts: %s", len(texts), exc)
        with self.queue.cond:
            if len(self._ready) + len(texts) > READY_TEXTS_LIMIT:
                self._ready.clear()  # bounded: a forgotten text is only prefetched again
            self._ready.update(texts)
            self.queue.release(texts)

    def _embed_side(self, items: list[Input]) -> None:
        try:
            texts = [t for t in (side_text(item) for item in items) if t]
            if texts:
                self.embed_texts(texts)
        finally:
            self.queue.finish(len(items))

    def clear(self) -> None:
        with self.queue.cond:
            self._wanted.clear()


def side_text(item: Input) -> str:
    """The text of a ``memory:new`` or ``code:new`` event worth embedding ('' for none)."""
    payload = item.payload
    if item.topic == events.MEMORY_NEW:
        return payload["data"] if payload["data"].strip() else ""
    if item.topic == events.CODE_NEW:
        return payload.get("summary", "").strip() or payload["code"]
    return ""
