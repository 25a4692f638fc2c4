"""The embedding model exported to ONNX and run by onnxruntime: the fast path on this CPU.

Faster than torch on a CPU for queries and ingest alike (docs/measurements.md),
with the same vectors to 1e-5. Texts are tokenized all at once (Rust, off the
model's path), sorted by token count and cut into batches by a token budget, so
padding is minimal.
The export is made offline from the local model folder, once, and cached; the
optional int8 variant (dynamic, per-channel quantization) is derived from it.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.arrays import Vectors

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
EXPORT_VERSION = "v2"  # v2: token states as a second output
# Batches of at most this many padded tokens and texts: faster here than 32 texts of 256
# (README "Performance"), for documents and queries alike.
BATCH_TOKENS = 1024
MAX_BATCH = 64


def _fingerprint(model_folder: Path) -> str:
    h = hashlib.sha256()
    for name in sorted(p.name for p in model_folder.iterdir() if p.is_file()):
        stat = (model_folder / name).stat()
        h.update(f"{name}:{stat.st_size}".encode())
    return h.hexdigest()[:16]


def export(model: Any, out: Path) -> None:
    """Trace the transformer with mean pooling and normalization into one ONNX graph.

    It has two outputs: the sentence embedding, and the last hidden states of the
    tokens (from which spans inside a text are pooled, see ``encode_spans``).
    """
    import torch

    transformer = model[0].auto_model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                      token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=-1), hidden

    sample = model.tokenizer(["a query", "another, longer sample query"], return_tensors="pt",
                             padding=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp-{os.getpid()}")
    axes = {name: {0: "batch", 1: "sequence"} for name in _INPUTS}
    # The tracer warns that two conditions become constants: BERT's attention is never
    # causal and its key length always equals the mask's, so both hold for every input
    # (tests/test_embedding.py compares the export with torch across lengths and padding).
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=torch.jit._trace.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index operator")
        torch.onnx.export(Pooled(), tuple(sample[name] for name in _INPUTS), str(tmp),
                          input_names=list(_INPUTS), output_names=["embedding", "tokens"],
                          dynamic_axes={**axes, "embedding": {0: "batch"},
                                        "tokens": {0: "batch", 1: "sequence"}}, opset_version=17,
                          dynamo=False)
    os.replace(tmp, out)


def quantize(fp32: Path, out: Path) -> None:
    """Dynamic int8 quantization with per-channel weight scales (cosine to fp32 ≈ 0.99)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = out.with_suffix(f".tmp-{os.getpid()}")
    quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    os.replace(tmp, out)


class OnnxEncoder:
    """Embeds with the cached export; ``int8`` picks the quantized variant."""

    def __init__(self, load_model: Callable[[], Any], model_folder: Path, cache: Path,
                 max_tokens: int, int8: bool = False, query_int8: bool = False) -> None:
        from tokenizers import Tokenizer

        stem = f"{model_folder.name}-{_fingerprint(model_folder)}-{EXPORT_VERSION}"
        fp32 = cache / f"{stem}.onnx"
        quantized = cache / f"{stem}-int8.onnx"
        with _EXPORT_LOCK:
            if not fp32.is_file():
                export(load_model(), fp32)
            if (int8 or query_int8) and not quantized.is_file():
                quantize(fp32, quantized)
        path = quantized if int8 else fp32
        # The two-thread session for documents loads on first use: a server that only
        # answers queries never holds it (90 MB for fp32).
        self._bulk: Any = None
        self._bulk_lock = threading.Lock()
        # Queries run on one thread each, as many at once as there are cores: a second
        # thread makes a lone query faster but costs more CPU in all, and under load that
        # CPU is what runs out (docs/measurements.md).
        self._query_int8 = query_int8 or int8
        self._query_session = session(quantized if self._query_int8 else fp32, threads=1)
        self._tokenizer = Tokenizer.from_file(str(model_folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_tokens)
        self._tokenizer.no_padding()
        self._counter = Tokenizer.from_file(str(model_folder / "tokenizer.json"))
        self._counter.no_truncation()
        self._counter.no_padding()
        self.path = path
        self.dimension = int(self._query_session.get_outputs()[0].shape[-1])

    def _bulk_session(self) -> Any:
        with self._bulk_lock:
            if self._bulk is None:
                self._bulk = session(self.path, threads=2)
            return self._bulk

    def count_tokens(self, text: str) -> int:
        """Word pieces with special tokens, untruncated (what would be cut past max_tokens)."""
        return len(self._counter.encode(text).ids)

    def encode(self, texts: Sequence[str], batch_tokens: int = BATCH_TOKENS,
               max_batch: int = MAX_BATCH,
               progress: Callable[[int], object] | None = None) -> Vectors:
        """Vectors in input order; each batch holds at most ``batch_tokens`` padded tokens."""
        return self._run(texts, None, batch_tokens, max_batch, progress)[0]

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        """Like ``encode``, through the query model (the int8 variant when asked for).

        The int8 model quantizes activations with one scale per batch, so a query's
        vector would move (by up to 0.02) with whatever queries shared its call; each
        runs alone there, and a query gets the same vector under any load.
        """
        if not self._query_int8:
            return self._run(texts, None, BATCH_TOKENS, MAX_BATCH, None, self._query_session)[0]
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for n, text in enumerate(texts):
            out[n] = self._run([text], None, BATCH_TOKENS, 1, None, self._query_session)[0][0]
        return out

    def encode_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                     batch_tokens: int = BATCH_TOKENS, max_batch: int = MAX_BATCH,
                     progress: Callable[[int], object] | None = None
                     ) -> tuple[Vectors, list[Vectors]]:
        """Each text's vector and, in the same model call, a vector per character span of it.

        A span's vector is the normalized mean of the hidden states of the tokens
        it covers, so it is read in the context of its whole text; a span that
        covers no token (past truncation) gets the text's own vector.
        """
        return self._run(texts, spans, batch_tokens, max_batch, progress)

    def _run(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]] | None,
             batch_tokens: int, max_batch: int, progress: Callable[[int], object] | None,
             session: Any = None) -> tuple[Vectors, list[Vectors]]:
        session = session or self._bulk_session()
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        pooled: list[Vectors] = [out[:0]] * len(texts)
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(-lengths, kind="stable")
        outputs = ["embedding"] if spans is None else ["embedding", "tokens"]
        start = 0
        while start < len(order):
            longest = int(lengths[order[start]])
            size = max(1, min(max_batch, batch_tokens // max(longest, 1)))
            rows = order[start:start + size]
            ids = np.zeros((len(rows), longest), dtype=np.int64)
            mask = np.zeros_like(ids)
            for r, i in enumerate(rows):
                n = int(lengths[i])
                ids[r, :n] = encodings[i].ids
                mask[r, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            result = session.run(outputs, feeds)
            out[rows] = result[0]
            if spans is not None:
                for r, i in enumerate(rows):
                    pooled[i] = _pool_spans(result[1][r], encodings[i].offsets,
                                            encodings[i].special_tokens_mask, spans[i], out[i])
            if progress is not None:
                progress(len(rows))
            start += len(rows)
        return out, pooled


def session(path: Path, threads: int) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle pool threads would spin for work, burning the core that HTTP handling,
    # BM25 and FAISS need between model calls (on 2 cores, under load).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _pool_spans(states: Vectors, offsets: Sequence[tuple[int, int]], special: Sequence[int],
                spans: Sequence[tuple[int, int]], whole: Vectors) -> Vectors:
    starts = np.array([a for a, _ in offsets])
    ends = np.array([b for _, b in offsets])
    real = np.array(special) == 0
    out = np.empty((len(spans), states.shape[1]), dtype=np.float32)
    for n, (a, b) in enumerate(spans):
        covered = real & (starts < b) & (ends > a)
        if not covered.any():
            out[n] = whole
            continue
        v = states[:len(starts)][covered].mean(axis=0)
        out[n] = v / max(float(np.linalg.norm(v)), 1e-12)
    return out


_EXPORT_LOCK = threading.Lock()
