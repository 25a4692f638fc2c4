"""Fitting each stage of the evidence scorer (used by eval.quality.train_evidence).

The linear stage on the candidates' features, the cross-encoder on each example's best
candidates by it (eval.quality.evidence_cross), and each stage's combiner,
answerability model and policy on out-of-fold outputs (eval.quality.evidence_policy).
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eval.quality import evidence_policy
from eval.quality.evidence_cross import CROSS_CONFIG, TOP, Bottom, Group, predict, train_cross
from eval.quality.evidence_data import Example
from eval.quality.evidence_policy import Outputs
from rag.scorer import Answerability, Policy


def fit_linear(examples: Sequence[Example]) -> tuple[list[float], float]:
    """Logistic regression on standardized features, returned as raw-feature weights.

    Questions and claims weigh the same in all (each claim's candidates count as many
    times as there are questions per claim): unweighted, the ten times more numerous
    questions set the weights alone, and claims' [1] was right for 0.44 of them against
    0.50 weighted, while the questions' rose too (0.72 to 0.74, cross-validated).
    """
    from sklearn.linear_model import LogisticRegression

    x = np.vstack([e.rows for e in examples if len(e.rows)])
    y = np.concatenate([e.labels for e in examples])
    n_claims = sum(e.kind == "claim" for e in examples)
    claim_weight = (len(examples) - n_claims) / n_claims if n_claims else 1.0
    weight = np.concatenate([np.full(len(e.labels), claim_weight if e.kind == "claim" else 1.0)
                             for e in examples])
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-9] = 1.0
    model = LogisticRegression(C=1.0, max_iter=5000).fit((x - mean) / scale, y,
                                                          sample_weight=weight)
    weights = model.coef_[0] / scale
    bias = float(model.intercept_[0] - (model.coef_[0] * mean / scale).sum())
    return [float(w) for w in weights], bias


def groups_for(examples: Sequence[Example], z1: Sequence[np.ndarray], n: int) -> list[Group]:
    """Each example's ``n`` best candidates by the linear stage, for the cross-encoder."""
    out = []
    for e, z in zip(examples, z1, strict=True):
        t = evidence_policy.top(z, n)
        out.append(Group(e.text, [e.candidates[j].quote for j in t], e.labels[t],
                         [e.phrases[j] if e.phrases else [] for j in t],
                         CROSS_CONFIG["claim_weight"] if e.kind == "claim" else 1.0))
    return out


def cross_outputs(model: Any, bottom: Bottom, examples: Sequence[Example],
                  z1: Sequence[np.ndarray]) -> list[Outputs]:
    """The cross-encoder's logits and phrases for each example's top candidates."""
    tops = [evidence_policy.top(z, TOP) for z in z1]
    read = predict(model, bottom, [(e.text, [e.candidates[j].quote for j in t])
                                   for e, t in zip(examples, tops, strict=True)])
    out = []
    for z, t, (logits, phrases) in zip(z1, tops, read, strict=True):
        cross = np.full(len(z), np.nan)
        cross[t] = logits
        out.append(Outputs(z, cross, {int(j): p for j, p in zip(t, phrases, strict=True)
                                      if p is not None}))
    return out


def stage_fit(examples: Sequence[Example], outputs: Sequence[Outputs], rerank: bool,
              words: int) -> tuple[Any, Answerability, Policy, dict[str, float]]:
    """Combiner, answerability and policy for one stage, from out-of-fold outputs."""
    combiner = evidence_policy.fit_combiner(examples, outputs, TOP) if rerank else None
    logits = [evidence_policy.sentence_logits(o, combiner, TOP) for o in outputs]
    answerability = evidence_policy.fit_answerability(examples, logits,
                                                      [o.linear for o in outputs])
    tables = [evidence_policy.table(e, evidence_policy.scores_of(o, z, answerability), words)
              for e, o, z in zip(examples, outputs, logits, strict=True)]
    policy, fit = evidence_policy.choose_policy(tables)
    return combiner, answerability, policy, fit


def fit_cross(bottom: Bottom, examples: Sequence[Example], z1: Sequence[np.ndarray], seed: int,
              folder: Path) -> Any:
    """An adapter trained on the examples' top candidates, saved and reloaded as served.

    Every claim, and questions up to ``train_examples`` examples in all (a seeded sample),
    keep one fold's training within the two-hour budget on 2 cores; the claims are few
    and unlike the questions, so none is left out.
    """
    claims = [i for i, e in enumerate(examples) if e.kind == "claim"]
    asked = [i for i, e in enumerate(examples) if e.kind != "claim"]
    room = max(0, CROSS_CONFIG["train_examples"] - len(claims))
    picked = sorted(claims + random.Random(seed).sample(asked, min(len(asked), room)))
    trained = train_cross(bottom, groups_for([examples[i] for i in picked],
                                             [z1[i] for i in picked], CROSS_CONFIG["train_top"]),
                          seed=seed)
    shutil.rmtree(folder, ignore_errors=True)
    return trained.save(folder)
