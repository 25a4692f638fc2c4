"""Training the cross-encoder stage of the evidence scorer (used by eval.quality.train_evidence).

The model is rag.crossencoder's: the packaged MiniLM with a LoRA adapter on every
attention and feed-forward projection and a linear head on the mean of its last
hidden states. Each training claim contributes its ``TOP`` best candidates by
the linear stage — the sentences the cross-encoder will be asked about when it
serves — labelled by the annotators' rationales (see ``train_cross`` for the loss). Fixed
seeds; two CPU threads; about 20 minutes for 650 claims.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.crossencoder import MAX_TOKENS, build_model, encode_pairs, pair_tokenizer, save_adapter

TOP = 10  # candidates per question the cross-encoder reads (train and serve)
CROSS_CONFIG: dict[str, Any] = {
    "r": 16, "lora_alpha": 32, "lora_dropout": 0.1,
    "target_modules": ["query", "key", "value", "dense"],
    "epochs": 3, "lr": 1e-3, "head_lr": 1e-3, "questions_per_step": 3,
    "max_tokens": MAX_TOKENS,
}


@dataclass
class Trained:
    """A trained model and the base folder it was built on; ``save`` rounds it as served."""

    model: Any
    base: Path

    def save(self, folder: Path) -> Any:
        """Write the adapter and return the model rebuilt from it (fp16 weights, merged)."""
        save_adapter(self.model, folder, {k: CROSS_CONFIG[k] for k in
                                          ("r", "lora_alpha", "lora_dropout", "target_modules")})
        return build_model(self.base, folder)


def _encode(tokenizer: Any, pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    import torch

    return {k: torch.from_numpy(v) for k, v in encode_pairs(tokenizer, pairs).items()}


def train_cross(base: Path, questions: Sequence[str], sentences: Sequence[Sequence[str]],
                labels: Sequence[np.ndarray], seed: int = 0, threads: int = 2,
                log: bool = True) -> Trained:
    """Fit adapter and head on each question's candidate sentences and their labels.

    The loss reads a question's candidates as one list: softmax cross-entropy
    towards its evidence sentences, with a learned "none of these" logit as the
    target for a question without evidence, plus half a binary cross-entropy per
    sentence so a logit also means something on its own. Picking the right
    sentence among its neighbours is the hard part (measured on a held-out fold:
    evidence ranked first for 64% of claims against 53% with the per-sentence loss
    alone).
    """
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    cfg = CROSS_CONFIG
    model = build_model(base, config=cfg, trainable=True)
    model.train()
    tokenizer = pair_tokenizer(base)
    groups = [(q, list(ss), torch.tensor(np.asarray(ys, dtype=np.float32)))
              for q, ss, ys in zip(questions, sentences, labels, strict=True) if len(ss)]
    none = torch.nn.Parameter(torch.zeros(1))
    head = [p for n, p in model.named_parameters() if n.startswith("head")]
    lora = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head")]
    optimizer = torch.optim.AdamW([{"params": lora, "lr": cfg["lr"]},
                                   {"params": [*head, none], "lr": cfg["head_lr"]}],
                                  weight_decay=0.01)
    per_step = cfg["questions_per_step"]
    steps = cfg["epochs"] * -(-len(groups) // per_step)
    warm = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: s / warm if s < warm else max(0.0, (steps - s) / max(steps - warm, 1)))
    bce = torch.nn.BCEWithLogitsLoss()
    t0, step = time.time(), 0
    for _ in range(cfg["epochs"]):
        order = list(range(len(groups)))
        rng.shuffle(order)
        for s in range(0, len(order), per_step):
            batch = [groups[g] for g in order[s:s + per_step]]
            logits = model(**_encode(tokenizer, [(q, x) for q, ss, _ in batch for x in ss]))
            loss, offset = torch.zeros(()), 0
            for _, ss, ys in batch:
                scores = torch.cat([none, logits[offset:offset + len(ss)]])
                target = torch.cat([(ys.sum() == 0).float().reshape(1), ys])
                loss = loss - (target / target.sum() * torch.log_softmax(scores, 0)).sum()
                offset += len(ss)
            loss = loss / len(batch) + 0.5 * bce(logits, torch.cat([ys for _, _, ys in batch]))
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if log and step % 50 == 0:
                print(f"  step {step}/{steps} loss {loss.item():.4f} {time.time() - t0:.0f}s",
                      flush=True)
    model.eval()
    return Trained(model, base)


def predict(model: Any, tokenizer: Any, question: str, sentences: Sequence[str]) -> np.ndarray:
    """Logits of a (merged) model for one question's sentences."""
    import torch

    if not sentences:
        return np.zeros(0)
    pairs = [(question, s) for s in sentences]
    with torch.inference_mode():
        logits: np.ndarray = model(**_encode(tokenizer, pairs)).numpy()
    return logits
