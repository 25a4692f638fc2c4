"""The pipelines of every collection one process serves (`rag serve`, `rag mcp`).

Each collection's Pipeline is opened when first asked for and shares the models of the
default collection's (rag.pipeline.Pipeline.sibling): a server with ten collections loads
the model once. Deleting a collection closes its pipeline first. Whether a collection exists
is asked of the disk each time, so one another process created or deleted is seen at once.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rag.collections import DEFAULT, Collections, check_name
from rag.errors import CollectionNotFoundError
from rag.pipeline import Pipeline
from rag.writer import IndexWriter


class Pipelines:
    def __init__(self, default: Pipeline) -> None:
        self.default = default
        self.settings = default.settings
        self.collections = Collections(Path(self.settings.index_dir),
                                       self.settings.request_lock_wait_s)
        self._open: dict[str, Pipeline] = {DEFAULT: default}
        self._lock = threading.Lock()

    def get(self, name: str) -> Pipeline:
        """The collection's pipeline; CollectionNotFoundError when there is none."""
        if name == DEFAULT:
            return self.default
        check_name(name)
        if not self.collections.exists(name):
            self._close(name)  # deleted by another process
            raise CollectionNotFoundError(name)
        with self._lock:
            pipeline = self._open.get(name)
            if pipeline is None:
                pipeline = self._open[name] = self.default.sibling(name)
            return pipeline

    def names(self) -> list[str]:
        return self.collections.names()

    def counts(self, name: str) -> dict[str, object]:
        return self.collections.counts(name)

    def create(self, name: str) -> None:
        """A new, empty collection with this server's model and chunker."""
        self.collections.create(name, self._initialize)

    def _initialize(self, folder: Path) -> None:
        d = self.default
        with IndexWriter(folder, d.model_id, d.embedder.dimension, d.chunker().describe(),
                         ann_threshold=self.settings.ann_threshold) as writer:
            writer.commit()

    def delete(self, name: str) -> None:
        self.collections.delete(name, self.settings.request_lock_wait_s,
                                before=lambda: self._close(name))

    def _close(self, name: str) -> None:
        with self._lock:
            pipeline = self._open.pop(name, None)
        if pipeline is not None:
            pipeline.close()
