"""From out-of-fold logits to a scorer's combiner, answerability model and policy.

Used by eval.quality.train_evidence. Every function here reads only the logits and
labels it is given, so a fold's choices are made on the other folds' out-of-fold
outputs and the shipped ones on all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eval.quality import rationales
from eval.quality.evidence_data import Example
from eval.quality.rationales import Claim, Counts
from eval.quality.squad import Question, token_f1
from rag.answer import choose
from rag.arrays import Floats, Ints
from rag.phrase import Phrase
from rag.scorer import (
    ANSWERABILITY_INPUTS,
    Answerability,
    Policy,
    Scores,
    answerability_inputs,
    combiner_inputs,
    shares,
)

ABSTAIN = tuple(round(x, 3) for x in np.arange(0.05, 0.96, 0.025))
CITE = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
MARGIN = (0.1, 0.2, 0.3, 0.5, 1.0)
MAX_SENTENCES = (1, 2, 3)
PHRASE = tuple(round(x, 3) for x in np.arange(0.0, 0.96, 0.05))


@dataclass
class Outputs:
    """One example's out-of-fold outputs: linear logits, cross logits (NaN where not read)
    and the answer phrase of each candidate the cross-encoder read."""

    linear: Floats
    cross: Floats | None = None
    phrases: dict[int, Phrase] | None = None


def top(z: Floats, n: int) -> Ints:
    """The ``n`` candidates with the highest logits, best first."""
    out: Ints = np.argsort(-z, kind="stable")[:n]
    return out


def sentence_logits(o: Outputs, combiner: tuple[Sequence[float], float] | None,
                    n_top: int) -> Floats:
    """Each candidate's logit as the scorer computes it (-inf where never citable)."""
    if combiner is None or o.cross is None:
        return o.linear
    weights, bias = combiner
    z = np.full(len(o.linear), -np.inf)
    t = top(o.linear, n_top)
    z[t] = combiner_inputs(o.linear[t], o.cross[t]) @ np.asarray(weights) + bias
    return z


def fit_combiner(examples: Sequence[Example], outputs: Sequence[Outputs],
                 n_top: int) -> tuple[list[float], float]:
    """Weights of rag.scorer.COMBINER_INPUTS over each example's top candidates."""
    from sklearn.linear_model import LogisticRegression

    tops = [top(o.linear, n_top) for o in outputs]
    x = np.vstack([combiner_inputs(o.linear[t], o.cross[t])  # type: ignore[index]
                   for o, t in zip(outputs, tops, strict=True) if len(t)])
    y = np.concatenate([e.labels[t] for e, t in zip(examples, tops, strict=True)])
    model = LogisticRegression(C=1.0, max_iter=5000).fit(x, y)
    return [float(w) for w in model.coef_[0]], float(model.intercept_[0])


def citable(e: Example, z: Floats) -> bool:
    """Whether a candidate the scorer could cite holds the evidence (the answerability label:
    an answer the retrieval or the top never reached cannot be given either way)."""
    return bool(len(z) and e.labels[np.isfinite(z)].any())


def fit_answerability(examples: Sequence[Example], logits: Sequence[Floats],
                      linear: Sequence[Floats]) -> Answerability:
    from sklearn.linear_model import LogisticRegression

    rows = [i for i, z in enumerate(logits) if np.isfinite(z).any()]
    x = np.vstack([answerability_inputs(logits[i][np.isfinite(logits[i])], linear[i])
                   for i in rows])
    y = np.array([citable(examples[i], logits[i]) for i in rows])
    model = LogisticRegression(C=1.0, max_iter=5000).fit(x, y)
    assert len(model.coef_[0]) == len(ANSWERABILITY_INPUTS)
    return Answerability(tuple(float(w) for w in model.coef_[0]), float(model.intercept_[0]))


@dataclass
class Table:
    """One example under every policy at once.

    Whatever the thresholds, the composer cites a prefix of what it would cite with
    none (``choose`` stops at the first sentence under a threshold), so a policy is
    read off the answerability, the probabilities of that order and per-prefix figures.
    """

    kind: str
    answerable: float
    probs: Floats
    counts: list[Counts]  # claims: SciFact's counts per prefix length
    first_holds: bool  # questions: [1] overlaps an answer
    precise: list[int]  # questions: citations in an answer sentence, per prefix length
    phrase: float  # the first's answer phrase probability (0 when none)
    phrase_f1: float
    has_answer: bool


def table(e: Example, scores: Scores, max_words: int) -> Table:
    order = choose(scores, Policy(0.0, 0.0, np.inf, max(MAX_SENTENCES)), e.candidates,
                   e.vectors, max_words)
    cited = [(e.candidates[i].doc_id, e.candidates[i].start, e.candidates[i].end)
             for i in order]
    probs = scores.probability[order]
    src = e.source
    if isinstance(src, Claim):
        counts = [rationales.score_claim(src, cited[:n]) for n in range(len(cited) + 1)]
        return Table("claim", scores.answerable, probs, counts, False, [], 0.0, 0.0,
                     src.has_evidence)
    assert isinstance(src, Question)
    precise = [0]
    for c in cited:
        precise.append(precise[-1] + src.in_answer_sentence(*c))
    phrase = scores.phrases.get(order[0]) if order else None
    f1 = 0.0
    if phrase is not None and src.answerable:
        quote = e.candidates[order[0]].quote
        f1 = token_f1(quote[phrase.start:phrase.end], src.answer_texts)
    return Table("question", scores.answerable, probs, [], bool(cited) and src.holds(*cited[0]),
                 precise, phrase.probability if phrase else 0.0, f1, src.answerable)


def cited_count(t: Table, policy: Policy) -> int:
    if not len(t.probs) or t.answerable < policy.abstain_below:
        return 0
    floor = max(policy.cite_from, float(t.probs[0]) - policy.margin)
    return min(policy.max_sentences, 1 + int((t.probs[1:] >= floor).sum()))


def figures(tables: Sequence[Table], policy: Policy) -> dict[str, float]:
    """The objective's parts under ``policy``: SciFact's sentence F1 for claims, and for
    questions the QA accuracy, citation precision and the answer phrase's worth."""
    claims, right, declined, n_q, cites, precise, phrase_gain = Counts(), 0, 0, 0, 0, 0, 0.0
    for t in tables:
        n = cited_count(t, policy)
        if t.kind == "claim":
            claims.add(t.counts[n])
            continue
        n_q += 1
        if n == 0:
            declined += not t.has_answer
            continue
        right += t.has_answer and t.first_holds
        cites += n
        precise += t.precise[n]
        if t.phrase >= policy.phrase_from:
            phrase_gain += t.phrase_f1 - 0.5
    scores = claims.scores()
    return {"claims_f1": scores["f1"], "qa_accuracy": (right + declined) / max(n_q, 1),
            "citation_precision": precise / max(cites, 1), "phrase_gain": phrase_gain}


def objective(f: dict[str, float]) -> float:
    """Questions and claims weigh the same: QA accuracy and citation precision of the
    questions, and the claims' sentence F1."""
    return f["qa_accuracy"] + 0.5 * f["citation_precision"] + f["claims_f1"]


def choose_policy(tables: Sequence[Table]) -> tuple[Policy, dict[str, float]]:
    """The thresholds with the best objective on these (out-of-fold) tables; then the
    answer phrase's threshold, where a given phrase is more often right than wrong."""
    best: tuple[float, Policy, dict[str, float]] | None = None
    for abstain in ABSTAIN:
        for cite in CITE:
            for margin in MARGIN:
                for most in MAX_SENTENCES:
                    policy = Policy(abstain, cite, margin, most)
                    f = figures(tables, policy)
                    if best is None or objective(f) > best[0]:
                        best = (objective(f), policy, f)
    assert best is not None
    policy = best[1]
    gains = {t: figures(tables, Policy(policy.abstain_below, policy.cite_from, policy.margin,
                                       policy.max_sentences, t))["phrase_gain"] for t in PHRASE}
    phrase_from = max(PHRASE, key=lambda t: (gains[t], -t))
    policy = Policy(policy.abstain_below, policy.cite_from, policy.margin, policy.max_sentences,
                    phrase_from)
    return policy, figures(tables, policy)


def scores_of(o: Outputs, logits: Floats, answerability: Answerability) -> Scores:
    """What the scorer would return for these outputs (rag.scorer.decide)."""
    finite = np.isfinite(logits)
    p = answerability(logits[finite], o.linear) if finite.any() else 0.0
    return Scores(p * shares(logits), p, {}, o.phrases or {})
