"""Errors the library raises; each message says what to do next.

The edges translate them: the CLI into a one-line message and a non-zero exit,
the API into an HTTP status (``status`` below) with a JSON body.
"""

from __future__ import annotations


class RagError(Exception):
    """Base of every error the library raises on purpose."""

    status = 500


class InputError(RagError):
    """The caller asked for something malformed: an empty query, a bad k."""

    status = 422


class SettingsError(RagError):
    """An environment variable (RAG_*) holds a value the service cannot use."""

    status = 500


class NoIndexError(RagError):
    status = 503

    def __init__(self, index_dir: object) -> None:
        super().__init__(f"no index at {index_dir}: run `rag ingest PATH` first")


class DocumentExistsError(RagError):
    """An upload would replace a document the client did not ask to replace."""

    status = 409

    def __init__(self, doc_id: str) -> None:
        super().__init__(f"a document with doc_id {doc_id!r} is already indexed: upload with "
                         "replace=true to replace it, or rename the file")
        self.doc_id = doc_id


class IndexMismatchError(RagError):
    """The index was built with another model, dimension or format."""

    status = 409


class IndexBusyError(RagError):
    """Another writer holds the index lock."""

    status = 409


class DocumentNotFoundError(RagError):
    status = 404

    def __init__(self, doc_id: str) -> None:
        super().__init__(f"no document with doc_id {doc_id!r}: list them with `rag docs`")
        self.doc_id = doc_id


class UnsupportedFileError(RagError):
    status = 415


class UnreadableFileError(RagError):
    status = 422


class FileTooLargeError(RagError):
    status = 413


class CancelledError(RagError):
    """The caller no longer wants the result (an upload whose client went away)."""

    status = 499  # nginx's "client closed request": nobody is left to read the answer


class LLMError(RagError):
    """The configured LLM server is unreachable or sent something unusable."""

    status = 502


class LLMTimeoutError(LLMError):
    """The configured LLM server did not answer in time."""

    status = 504


class CollectionNotFoundError(RagError):
    """No such collection, or none this key may see: the same answer, so that a key never
    learns what other collections exist."""

    status = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"no collection {name[:80]!r}: list yours with `rag collections` or "
                         "GET /v1/collections")
        self.name = name


class CollectionExistsError(RagError):
    status = 409

    def __init__(self, name: str) -> None:
        super().__init__(f"a collection named {name!r} exists already: choose another name")
        self.name = name


class DocumentChangedError(RagError):
    """A document changed between reading it and writing a change to it."""

    status = 409

    def __init__(self, doc_id: str) -> None:
        super().__init__(f"document {doc_id!r} was changed or deleted by another write "
                         "meanwhile: read it again and retry")
        self.doc_id = doc_id
