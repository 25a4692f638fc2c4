"""Training the cross-encoder stage of the evidence scorer (used by eval.quality.train_evidence).

The model is rag.crossencoder's: the packaged MiniLM whose top layers an adapter
changes, a linear head on the mean of its last hidden states, and a start/end head on
each token. Each training question or claim contributes its best candidates by the
linear stage — the sentences the cross-encoder will be asked about when it serves —
labelled by the annotators (see ``train_cross`` for the loss).

The layers below the adapted ones never change, so what they make of a (question,
sentence) pair is computed once (``Bottom``, in half precision) and shared by every
fold and epoch: training and out-of-fold prediction run only the top layers. Fixed
seeds; two CPU threads; bfloat16 matrix products (``autocast``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.crossencoder import (
    MAX_TOKENS,
    bert_of,
    build_model,
    pair_tokenizer,
    save_adapter,
    sentence_tokens,
    trained_layers,
)
from rag.phrase import Phrase, best_span

TOP = 10  # candidates per question the cross-encoder reads (train and serve)
ADAPTER_KEYS = ("mode", "layers", "r", "lora_alpha", "lora_dropout", "target_modules")
CROSS_CONFIG: dict[str, Any] = {
    "mode": "lora", "layers": 3, "r": 32, "lora_alpha": 64, "lora_dropout": 0.1,
    "target_modules": ["query", "key", "value", "dense"],
    "epochs": 2, "lr": 1e-3, "head_lr": 1e-3, "questions_per_step": 8,
    "train_top": 6, "train_examples": 3000, "span_weight": 1.0, "max_tokens": MAX_TOKENS,
    "claim_weight": 1.0,
}
Span = tuple[int, int]
Pair = tuple[str, str]


@dataclass
class Group:
    """One question's sentences to read, their labels, and the answers inside each."""

    question: str
    sentences: list[str]
    labels: np.ndarray  # bool per sentence
    phrases: list[list[Span]]  # per sentence: answers as spans of it
    weight: float = 1.0  # its share of the loss (claims may count more than questions)


@dataclass
class Encoded:
    """One pair as the adapted layers see it: the frozen layers' output and where the
    sentence's tokens are."""

    states: np.ndarray  # float16, tokens x hidden
    types: np.ndarray  # token type ids
    first: int
    offsets: list[tuple[int, int]]


@dataclass
class Bottom:
    """The frozen layers' output for every pair read so far, shared across folds."""

    base: Path
    below: int  # how many layers are frozen (run here)
    threads: int = 2
    pairs: dict[Pair, Encoded] = field(default_factory=dict)
    _bert: Any = field(default=None, repr=False)
    _tokenizer: Any = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_bert": None, "_tokenizer": None}

    def fill(self, pairs: Sequence[Pair], batch: int = 64, log: bool = True) -> None:
        import torch
        from transformers.masking_utils import create_bidirectional_mask

        todo = sorted({p for p in pairs if p not in self.pairs}, key=lambda p: len(p[0] + p[1]))
        if not todo:
            return
        torch.set_num_threads(self.threads)
        if self._bert is None:
            self._bert = bert_of(build_model(self.base, config={**CROSS_CONFIG, "mode": "full",
                                                                "layers": 0}))
            self._tokenizer = pair_tokenizer(self.base)
        bert, tokenizer = self._bert, self._tokenizer
        t0 = time.time()
        for s in range(0, len(todo), batch):
            part = todo[s:s + batch]
            encodings = tokenizer.encode_batch(part)
            feeds = _pad([np.asarray(e.ids) for e in encodings],
                         [np.asarray(e.type_ids) for e in encodings])
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                h = bert.embeddings(input_ids=feeds["input_ids"],
                                    token_type_ids=feeds["token_type_ids"])
                mask = create_bidirectional_mask(config=bert.config, inputs_embeds=h,
                                                 attention_mask=feeds["attention_mask"])
                for layer in bert.encoder.layer[:self.below]:
                    h = layer(h, mask)
            h = h.float().numpy().astype(np.float16)
            for r, (pair, e) in enumerate(zip(part, encodings, strict=True)):
                first, offsets = sentence_tokens(e)
                self.pairs[pair] = Encoded(h[r, :len(e.ids)].copy(), np.asarray(e.type_ids),
                                           first, offsets)
            if log and (s // batch) % 200 == 0:
                print(f"  bottom layers: {s + len(part)}/{len(todo)} pairs "
                      f"{time.time() - t0:.0f}s", flush=True)


def _pad(ids: Sequence[np.ndarray], types: Sequence[np.ndarray]) -> dict[str, Any]:
    import torch

    width = max(len(x) for x in ids)
    out = {k: torch.zeros((len(ids), width), dtype=torch.long)
           for k in ("input_ids", "token_type_ids", "attention_mask")}
    for r, (i, t) in enumerate(zip(ids, types, strict=True)):
        out["input_ids"][r, :len(i)] = torch.from_numpy(i.astype(np.int64))
        out["token_type_ids"][r, :len(t)] = torch.from_numpy(t.astype(np.int64))
        out["attention_mask"][r, :len(i)] = 1
    return out


def top_forward(model: Any, below: int, encoded: Sequence[Encoded],
                bucket: int = 16) -> tuple[Any, Any, Any]:
    """The adapted layers and the heads over cached inputs: logits, start and end logits
    (padded to the longest pair). Pairs run in buckets of similar length, so one long
    sentence does not pad the whole batch."""
    import torch
    from transformers.masking_utils import create_bidirectional_mask

    bert = bert_of(model)
    width = max(len(e.states) for e in encoded)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].states))
    parts = []
    for s in range(0, len(order), bucket):
        rows = order[s:s + bucket]
        w = max(len(encoded[i].states) for i in rows)
        h = torch.zeros((len(rows), w, bert.config.hidden_size))
        attention = torch.zeros((len(rows), w), dtype=torch.long)
        for r, i in enumerate(rows):
            n = len(encoded[i].states)
            h[r, :n] = torch.from_numpy(encoded[i].states.astype(np.float32))
            attention[r, :n] = 1
        mask = create_bidirectional_mask(config=bert.config, inputs_embeds=h,
                                         attention_mask=attention)
        for layer in bert.encoder.layer[below:]:
            h = layer(h, mask)
        m = attention.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        span = model.span(h).float()
        parts.append((rows, w, model.head(pooled).squeeze(-1).float(), span))
    index = torch.tensor([i for rows, *_ in parts for i in rows])
    logits = torch.cat([lo for *_, lo, _ in parts])[torch.argsort(index)]
    padded = [torch.nn.functional.pad(sp, (0, 0, 0, width - w), value=-1e4)
              for _, w, _, sp in parts]
    span = torch.cat(padded)[torch.argsort(index)]
    return logits, span[..., 0], span[..., 1]


@dataclass
class Trained:
    """A trained model and the base folder it was built on; ``save`` rounds it as served."""

    model: Any
    base: Path
    config: dict[str, Any]

    def save(self, folder: Path) -> Any:
        """Write the adapter and return the model rebuilt from it (fp16 weights, merged)."""
        save_adapter(self.model, folder, {k: self.config[k] for k in ADAPTER_KEYS})
        return build_model(self.base, folder)


def span_targets(e: Encoded, spans: Sequence[Span]) -> tuple[list[int], list[int]]:
    """Token positions where the answers start and end (those cut off by truncation skipped)."""
    starts, ends = [], []
    for a, b in spans:
        s = next((k for k, (_, end) in enumerate(e.offsets) if end > a), None)
        t = next((k for k in range(len(e.offsets) - 1, -1, -1) if e.offsets[k][0] < b), None)
        if s is not None and t is not None and s <= t and e.offsets[t][1] >= b:
            starts.append(e.first + s)
            ends.append(e.first + t)
    return starts, ends


def _span_loss(logits: Any, first: int, n: int, targets: list[int]) -> Any:
    import torch

    log_p = torch.log_softmax(logits[first:first + n], 0)
    return -torch.logsumexp(log_p[[t - first for t in targets]], 0)


def below_of(base: Path, config: dict[str, Any]) -> int:
    """How many layers of the base model the adapter leaves alone."""
    import json

    layers = int(json.loads((base / "config.json").read_text())["num_hidden_layers"])
    return trained_layers(config, layers)[0]


def train_cross(bottom: Bottom, groups: Sequence[Group], seed: int = 0,
                config: dict[str, Any] | None = None, log: bool = True) -> Trained:
    """Fit adapter and heads on each question's candidate sentences and their labels.

    The loss reads a question's candidates as one list: softmax cross-entropy
    towards its evidence sentences, with a learned "none of these" logit as the
    target for a question without evidence; plus half a binary cross-entropy per
    sentence, so a logit also means something on its own; plus, for each sentence
    holding an answer, the negative log-probability of the answers' first and last
    tokens under the span head's softmaxes over the sentence's tokens.
    """
    import torch

    cfg = {**CROSS_CONFIG, **(config or {})}
    if below_of(bottom.base, cfg) != bottom.below:
        raise ValueError("the cached bottom layers do not match the adapter's layers")
    torch.set_num_threads(bottom.threads)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    todo = [g for g in groups if g.sentences]
    bottom.fill([(g.question, x) for g in todo for x in g.sentences], log=log)
    model = build_model(bottom.base, config=cfg, trainable=True)
    model.train()
    none = torch.nn.Parameter(torch.zeros(1))
    heads = [p for n, p in model.named_parameters() if n.startswith(("head", "span"))]
    adapted = [p for n, p in model.named_parameters()
               if p.requires_grad and not n.startswith(("head", "span"))]
    optimizer = torch.optim.AdamW([{"params": adapted, "lr": cfg["lr"]},
                                   {"params": [*heads, none], "lr": cfg["head_lr"]}],
                                  weight_decay=0.01)
    per_step = cfg["questions_per_step"]
    steps = cfg["epochs"] * -(-len(todo) // per_step)
    warm = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: s / warm if s < warm else max(0.0, (steps - s) / max(steps - warm, 1)))
    bce = torch.nn.BCEWithLogitsLoss(reduction="none")
    t0, step = time.time(), 0
    for _ in range(cfg["epochs"]):
        order = list(range(len(todo)))
        rng.shuffle(order)
        for s in range(0, len(order), per_step):
            batch = [todo[g] for g in order[s:s + per_step]]
            encoded = [bottom.pairs[(g.question, x)] for g in batch for x in g.sentences]
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits, starts, ends = top_forward(model, bottom.below, encoded)
            logits, starts, ends = logits.float(), starts.float(), ends.float()
            listwise, span, spans, offset = torch.zeros(()), torch.zeros(()), 0, 0
            for g in batch:
                ys = torch.tensor(np.asarray(g.labels, dtype=np.float32))
                scores = torch.cat([none, logits[offset:offset + len(g.sentences)]])
                target = torch.cat([(ys.sum() == 0).float().reshape(1), ys])
                listwise = listwise - g.weight * (target / target.sum()
                                                  * torch.log_softmax(scores, 0)).sum()
                for j, answers in enumerate(g.phrases):
                    e = encoded[offset + j]
                    ts, te = span_targets(e, answers) if g.labels[j] else ([], [])
                    if ts:
                        span = span + _span_loss(starts[offset + j], e.first, len(e.offsets), ts) \
                            + _span_loss(ends[offset + j], e.first, len(e.offsets), te)
                        spans += 1
                offset += len(g.sentences)
            labels = torch.cat([torch.tensor(np.asarray(g.labels, dtype=np.float32))
                                for g in batch])
            weights = torch.cat([torch.full((len(g.sentences),), g.weight) for g in batch])
            loss = listwise / sum(g.weight for g in batch) \
                + 0.5 * (bce(logits, labels) * weights).sum() / weights.sum()
            if spans:
                loss = loss + cfg["span_weight"] * span / (2 * spans)
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if log and step % 100 == 0:
                print(f"  step {step}/{steps} loss {loss.item():.4f} {time.time() - t0:.0f}s",
                      flush=True)
    model.eval()
    return Trained(model, bottom.base, cfg)


def predict(model: Any, bottom: Bottom, items: Sequence[tuple[str, Sequence[str]]],
            batch: int = 64) -> list[tuple[np.ndarray, list[Phrase | None]]]:
    """Logits and answer phrases of a trained model for each (question, sentences) item."""
    import torch

    pairs = [(q, s) for q, sentences in items for s in sentences]
    bottom.fill(pairs)
    logits = np.zeros(len(pairs))
    phrases: list[Phrase | None] = [None] * len(pairs)
    order = sorted(range(len(pairs)), key=lambda i: len(bottom.pairs[pairs[i]].states))
    for s in range(0, len(order), batch):
        rows = order[s:s + batch]
        encoded = [bottom.pairs[pairs[i]] for i in rows]
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            logit, start, end = top_forward(model, bottom.below, encoded)
        logit, start, end = logit.float().numpy(), start.float().numpy(), end.float().numpy()
        for r, (i, e) in enumerate(zip(rows, encoded, strict=True)):
            logits[i] = logit[r]
            span = slice(e.first, e.first + len(e.offsets))
            phrases[i] = best_span(start[r, span], end[r, span], e.offsets)
    out, at = [], 0
    for _, sentences in items:
        out.append((logits[at:at + len(sentences)], phrases[at:at + len(sentences)]))
        at += len(sentences)
    return out
