"""Ranking metrics, with the definitions of trec_eval (as BEIR reports them).

A run maps query id -> {doc id: score}; qrels map query id -> {doc id: grade}.
Documents are ranked by score, ties broken by doc id (descending, as trec_eval
does); a grade above 0 is relevant; nDCG uses the grade as linear gain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def ranking(scores: Mapping[str, float]) -> list[str]:
    return [d for d, _ in sorted(scores.items(), key=lambda kv: (-kv[1], _neg(kv[0])))]


def _neg(doc_id: str) -> tuple[int, ...]:
    """Sort key placing larger doc ids first among equal scores (trec_eval's order)."""
    return tuple(-ord(c) for c in doc_id) + (1,)


def ndcg(ranked: list[str], judged: Mapping[str, int], k: int) -> float:
    dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k])
              if judged.get(d, 0) > 0)
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall(ranked: list[str], judged: Mapping[str, int], k: int) -> float:
    relevant = {d for d, g in judged.items() if g > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr(ranked: list[str], judged: Mapping[str, int], k: int) -> float:
    for i, d in enumerate(ranked[:k]):
        if judged.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def average_precision(ranked: list[str], judged: Mapping[str, int], k: int) -> float:
    relevant = {d for d, g in judged.items() if g > 0}
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for i, d in enumerate(ranked[:k]):
        if d in relevant:
            hits += 1
            total += hits / (i + 1)
    return total / len(relevant)


METRICS: dict[str, Callable[[list[str], Mapping[str, int]], float]] = {
    "ndcg@10": lambda r, j: ndcg(r, j, 10),
    "recall@1": lambda r, j: recall(r, j, 1),
    "recall@5": lambda r, j: recall(r, j, 5),
    "recall@10": lambda r, j: recall(r, j, 10),
    "recall@100": lambda r, j: recall(r, j, 100),
    "mrr@10": lambda r, j: mrr(r, j, 10),
    "map@100": lambda r, j: average_precision(r, j, 100),
}


def per_query(run: Run, qrels: Qrels) -> dict[str, dict[str, float]]:
    """Every metric for every judged query (a query with no results scores 0)."""
    out = {}
    for qid, judged in qrels.items():
        ranked = ranking(run.get(qid, {}))
        out[qid] = {name: fn(ranked, judged) for name, fn in METRICS.items()}
    return out


def evaluate(run: Run, qrels: Qrels) -> dict[str, float]:
    """Means over the judged queries."""
    scores = per_query(run, qrels)
    n = max(len(scores), 1)
    return {name: sum(s[name] for s in scores.values()) / n for name in METRICS}


def figure_lines(report: Mapping[str, Any], rows: Sequence[tuple[str, str]],
                 width: int) -> list[str]:
    """One line per (label, key) of a report, "n/a" for a figure that could not be
    computed, then the ask latency: the body of the questions' and the claims' tables."""
    lines = []
    for label, key in rows:
        value = report[key]
        lines.append(f"  {label:<{width}}{'n/a' if value is None else f'{value:.3f}':>8}")
    ms = report["ask_ms"]
    lines.append(f"  {'ask latency p50 / p95 (ms)':<{width}}{ms['p50']:>8.1f} / {ms['p95']:.1f}")
    return lines
