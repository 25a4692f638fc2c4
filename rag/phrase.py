"""The answer phrase: the shortest span of a cited sentence that answers the question.

The cross-encoder (rag.crossencoder) reads the question and a sentence together and,
besides its evidence logit, gives every token a start and an end logit (a head trained
on SQuAD's answer spans). Here those logits become a span of the sentence: the pair
of tokens, start at or before end and at most ``MAX_TOKENS`` apart, with the largest
sum of logits, and its probability under the two softmaxes over the sentence's tokens.
Offsets come from the tokenizer, so the phrase is always a substring of the sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.arrays import Floats

MAX_TOKENS = 30  # the longest phrase, in word pieces (SQuAD answers are short)


@dataclass(frozen=True, slots=True)
class Phrase:
    """``sentence[start:end]`` answers the question with ``probability`` (the two softmaxes
    over the sentence's tokens); ``score`` is its start and end logits' sum, which unlike
    the probability says how answer-like the best span is at all."""

    start: int
    end: int
    probability: float
    score: float = 0.0


def _softmax(x: Floats) -> Floats:
    e = np.exp(x - x.max())
    out: Floats = e / e.sum()
    return out


def best_span(start_logits: Floats, end_logits: Floats,
              offsets: Sequence[tuple[int, int]], max_tokens: int = MAX_TOKENS) -> Phrase | None:
    """The most probable span over the sentence's tokens (``offsets``: each token's
    characters in the sentence; ``start_logits`` and ``end_logits`` are those tokens').

    None when the sentence has no tokens (it was cut away by the pair's length limit).
    """
    n = len(offsets)
    if n == 0:
        return None
    s = np.asarray(start_logits[:n], dtype=np.float64)
    e = np.asarray(end_logits[:n], dtype=np.float64)
    # Every (i, j) with i <= j < i + max_tokens: the upper band of the sum matrix.
    total = s[:, None] + e[None, :]
    i_idx, j_idx = np.indices((n, n))
    total[(j_idx < i_idx) | (j_idx >= i_idx + max_tokens)] = -np.inf
    i, j = (int(x) for x in np.unravel_index(int(np.argmax(total)), total.shape))
    probability = float(_softmax(s)[i] * _softmax(e)[j])
    return Phrase(int(offsets[i][0]), int(offsets[j][1]), probability, float(s[i] + e[j]))
