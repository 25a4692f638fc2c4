"""Human-marked evidence sentences (SciFact's rationales) and the official sentence-level score.

A rationales file holds one claim a line::

    {"id": "2", "claim": "...", "evidence": {"13734012": [[4]]},
     "sentence_spans": {"13734012": [[123, 555], [556, 648], ...]}}

``evidence`` maps an abstract to its rationales (each a set of sentence indices that
together are the evidence); ``sentence_spans`` gives each sentence's character span in
the abstract's stored text (``title + "\\n\\n" + text``, as ``eval.quality.runner`` indexes it).
A claim with no evidence has ``"evidence": {}``.

Scoring follows SciFact's "selection only" sentence metric (allenai/scifact,
verisci/evaluate/lib/metrics.py): a predicted sentence is correct when its abstract is
an evidence abstract and every sentence of the gold rationale holding it was predicted
too; precision counts every predicted sentence, those for claims without evidence
included; recall is over every gold rationale sentence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from eval.quality.beir import DatasetError, json_lines

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Claim:
    """A claim with its gold evidence: abstract -> rationales, abstract -> sentence spans."""

    claim_id: str
    text: str
    evidence: Mapping[str, tuple[frozenset[int], ...]]
    spans: Mapping[str, tuple[Span, ...]]

    @property
    def has_evidence(self) -> bool:
        return bool(self.evidence)

    def gold_sentences(self) -> int:
        return sum(len(r) for rationales in self.evidence.values() for r in rationales)

    def evidence_sentences(self, doc_id: str) -> frozenset[int]:
        return frozenset().union(*self.evidence.get(doc_id, ()))


def load(path: Path) -> dict[str, Claim]:
    """Read a rationales file, checking it so a wrong file fails with a clear message."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path} is missing: pass a rationales .jsonl file to --rationales")
    claims: dict[str, Claim] = {}
    for n, row in json_lines(path):
        try:
            evidence = {str(d): tuple(frozenset(int(i) for i in r) for r in rationales)
                        for d, rationales in row["evidence"].items()}
            spans = {str(d): tuple((int(a), int(b)) for a, b in s)
                     for d, s in row.get("sentence_spans", {}).items()}
            claim = Claim(str(row["id"]), str(row["claim"]), evidence, spans)
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{path}:{n}: not a rationale record ({exc!r}); each line "
                               "needs id, claim, evidence and sentence_spans") from None
        missing = sorted(d for d in evidence if d not in spans)
        if missing:
            raise DatasetError(f"{path}:{n}: no sentence_spans for evidence abstract(s) "
                               f"{missing}")
        claims[claim.claim_id] = claim
    if not claims:
        raise DatasetError(f"{path} holds no claims")
    return claims


def sentences_covered(start: int, end: int, spans: Iterable[Span]) -> set[int]:
    """The gold sentences a quote of ``[start, end)`` stands for.

    A sentence splitter never draws exactly the annotators' boundaries, so a quote
    counts as sentence i when more than half of either lies inside the other: a
    fragment of a gold sentence is that sentence, a quote running over two whole
    sentences is both.
    """
    out = set()
    for i, (a, b) in enumerate(spans):
        overlap = min(end, b) - max(start, a)
        if overlap > 0 and (2 * overlap > b - a or 2 * overlap > end - start):
            out.add(i)
    return out


@dataclass
class Counts:
    """Running totals of the official metric and of per-citation figures."""

    retrieved: int = 0  # predicted sentences (official)
    correct: int = 0  # predicted sentences credited (official)
    relevant: int = 0  # gold rationale sentences (official)
    citations: int = 0
    evidence_citations: int = 0  # citations standing for at least one gold evidence sentence

    def add(self, other: Counts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def scores(self) -> dict[str, float]:
        p = self.correct / self.retrieved if self.retrieved else 0.0
        r = self.correct / self.relevant if self.relevant else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        cp = self.evidence_citations / self.citations if self.citations else 0.0
        return {"precision": p, "recall": r, "f1": f1, "citation_precision": cp}


def predicted_sentences(claim: Claim,
                        citations: Iterable[tuple[str, int, int]]) -> dict[str, set[int]]:
    """Per abstract, the sentence indices the citations ``(doc_id, start, end)`` stand for.

    A quote outside the gold sentences (a title, or any sentence of an abstract the
    rationales do not describe) is still a prediction: it stands for a sentence of its
    own, numbered below zero so that it never matches a gold one.
    """
    out: dict[str, set[int]] = {}
    for n, (doc_id, start, end) in enumerate(citations):
        covered = sentences_covered(start, end, claim.spans.get(doc_id, ()))
        out.setdefault(doc_id, set()).update(covered or {-1 - n})
    return out


def score_claim(claim: Claim, citations: Iterable[tuple[str, int, int]]) -> Counts:
    """Counts for one claim's answer (its citations; none when it abstained)."""
    cited = list(citations)
    counts = Counts(relevant=claim.gold_sentences(), citations=len(cited))
    for doc_id, start, end in cited:
        gold = claim.evidence_sentences(doc_id)
        if gold & sentences_covered(start, end, claim.spans.get(doc_id, ())):
            counts.evidence_citations += 1
    for doc_id, predicted in predicted_sentences(claim, cited).items():
        counts.retrieved += len(predicted)
        for rationale in claim.evidence.get(doc_id, ()):
            if rationale <= predicted:
                counts.correct += len(rationale)
    return counts
