"""Fit the evidence scorer on SciFact's train claims, cross-validated, and write it out.

    python -m eval.quality.train_evidence --dataset ../shared/datasets/scifact \\
        --rationales ../shared/datasets/scifact/rationales/train.jsonl \\
        [--out rag/data/evidence] [--folds 5] [--no-cross] [--json report.json]

Every claim is retrieved for exactly as ``POST /v1/ask`` does (default settings,
k=5) and its candidate sentences get the composer's features (rag.evidence); a
candidate is positive when it stands for a sentence the annotators marked.

- Linear stage: logistic regression on standardized features, written back as
  weights on the raw features.
- Cross-encoder stage (unless --no-cross): a LoRA adapter and head on the packaged
  MiniLM (eval.quality.evidence_cross) trained on each claim's best candidates by the
  linear stage, then a logistic regression over the two stages' logits
  (rag.scorer.combiner_inputs).
- Policy: the abstention and citation thresholds with the best sentence F1.

Cross-validation is k-fold over claims: fold f's claims are scored by a linear
stage and an adapter fit without them, and by a combiner and policy chosen on the
other folds' out-of-fold scores. Each fold's scorer is written under ``--cv-dir``
and the held-out claims are asked through the real ``Pipeline.ask`` with it
(eval.quality.citations), so the reported figures come from the service's own code path.
The shipped scorer is then fit on every train claim. Test claims are never read.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import rag  # noqa: F401
from eval import SEEDS
from eval.quality import calibrate, citations, rationales
from eval.quality.evidence_cross import CROSS_CONFIG, TOP, predict, train_cross
from eval.quality.rationales import Claim, Counts
from rag.answer import choose
from rag.arrays import Vectors
from rag.config import Settings
from rag.crossencoder import ADAPTER_WEIGHTS, build_model, pair_tokenizer
from rag.embedding import packaged_model_path
from rag.evidence import FEATURES, Candidate, features, gather
from rag.pipeline import Pipeline
from rag.scorer import FORMAT, SCORER_FILE, Policy, combiner_inputs, sigmoid

K = 5  # passages per question, as `rag ask` and /v1/ask default to
SEED = 0
ABSTAIN = tuple(round(x, 3) for x in np.arange(0.05, 0.8, 0.025))
CITE = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
MARGIN = (0.1, 0.2, 0.3, 0.5, 1.0)
MAX_SENTENCES = (1, 2, 3)
Floats = np.ndarray


@dataclass
class Example:
    """One claim's candidates as the composer sees them, with labels."""

    claim: Claim
    candidates: list[Candidate]
    vectors: Vectors
    rows: Floats
    labels: Floats

    def top(self, z: Floats) -> Floats:
        return np.argsort(-z, kind="stable")[:TOP]


def collect(pipeline: Pipeline, claims: Sequence[Claim], neighbours: int) -> list[Example]:
    out = []
    for claim in claims:
        index, hits, vector, _ = pipeline.retrieve(claim.text, K)
        cands, vectors = gather(hits, index, index.store.document, neighbours)
        rows = features(claim.text, vector, cands, vectors, index.lexical.idf,
                        index.lexical.query_tokens)
        labels = np.array([bool(claim.evidence_sentences(c.doc_id) & rationales.sentences_covered(
            c.start, c.end, claim.spans.get(c.doc_id, ()))) for c in cands], dtype=bool)
        out.append(Example(claim, cands, vectors, rows, labels))
    return out


def folds_of(n: int, k: int) -> list[int]:
    order = list(range(n))
    random.Random(SEED).shuffle(order)
    fold = [0] * n
    for rank, i in enumerate(order):
        fold[i] = rank % k
    return fold


def fit_linear(examples: Sequence[Example]) -> tuple[list[float], float]:
    """Logistic regression on standardized features, returned as raw-feature weights."""
    from sklearn.linear_model import LogisticRegression

    x = np.vstack([e.rows for e in examples if len(e.rows)])
    y = np.concatenate([e.labels for e in examples])
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-9] = 1.0
    model = LogisticRegression(C=1.0, max_iter=5000).fit((x - mean) / scale, y)
    weights = model.coef_[0] / scale
    bias = float(model.intercept_[0] - (model.coef_[0] * mean / scale).sum())
    return [float(w) for w in weights], bias


def fit_combiner(examples: Sequence[Example], z1: Sequence[Floats],
                 cross: Sequence[Floats]) -> tuple[list[float], float]:
    """Weights of rag.scorer.COMBINER_INPUTS over each claim's top candidates."""
    from sklearn.linear_model import LogisticRegression

    tops = [e.top(z) for e, z in zip(examples, z1, strict=True)]
    x = np.vstack([combiner_inputs(z[t], c[t]) for z, c, t in zip(z1, cross, tops, strict=True)])
    y = np.concatenate([e.labels[t] for e, t in zip(examples, tops, strict=True)])
    model = LogisticRegression(C=1.0, max_iter=5000).fit(x, y)
    return [float(w) for w in model.coef_[0]], float(model.intercept_[0])


def combined(example: Example, z1: Floats, cross: Floats,
             combiner: tuple[list[float], float]) -> Floats:
    """What RerankedScorer computes: the top candidates combined, the rest never cited."""
    weights, bias = combiner
    top = example.top(z1)
    z = np.full(len(z1), -np.inf)
    z[top] = combiner_inputs(z1[top], cross[top]) @ np.asarray(weights) + bias
    return sigmoid(z)


@dataclass
class Prefixes:
    """One claim under every policy at once.

    Whatever the thresholds, the composer cites a prefix of the sentences it would
    cite with none (``choose`` stops at the first sentence under a threshold), so a
    policy is read off the probabilities and metric counts of the first 0..3 of them.
    """

    probs: Floats
    counts: list[Counts]


def prefixes(e: Example, p: Floats, max_words: int) -> Prefixes:
    chosen = choose(p, Policy(0.0, 0.0, np.inf, max(MAX_SENTENCES)), e.candidates, e.vectors,
                    max_words)
    cited = [(e.candidates[i].doc_id, e.candidates[i].start, e.candidates[i].end)
             for i in chosen]
    return Prefixes(p[chosen], [rationales.score_claim(e.claim, cited[:n])
                                for n in range(len(cited) + 1)])


def counts_for(table: Sequence[Prefixes], policy: Policy) -> Counts:
    total = Counts()
    for t in table:
        n = 0
        if len(t.probs) and t.probs[0] >= policy.abstain_below:
            floor = max(policy.cite_from, t.probs[0] - policy.margin)
            n = min(policy.max_sentences, int((t.probs >= floor).sum()))
        total.add(t.counts[n])
    return total


def choose_policy(examples: Sequence[Example], probs: Sequence[Floats],
                  max_words: int) -> tuple[Policy, dict[str, float]]:
    """The thresholds with the best sentence F1 on these (out-of-fold) probabilities."""
    table = [prefixes(e, p, max_words) for e, p in zip(examples, probs, strict=True)]
    best: tuple[float, Policy, dict[str, float]] | None = None
    for abstain in ABSTAIN:
        for cite in (c for c in CITE if c <= abstain):
            for margin in MARGIN:
                for most in MAX_SENTENCES:
                    policy = Policy(abstain, cite, margin, most)
                    scores = counts_for(table, policy).scores()
                    if best is None or scores["f1"] > best[0]:
                        best = (scores["f1"], policy, scores)
    assert best is not None
    return best[1], best[2]


def write_scorer(folder: Path, linear: tuple[list[float], float], linear_policy: Policy,
                 rerank: dict[str, Any] | None, about: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "features": list(FEATURES),
            "linear": {"weights": [round(w, 8) for w in linear[0]], "bias": round(linear[1], 8),
                       "policy": linear_policy.as_dict()},
            "rerank": rerank, "about": about}
    (folder / SCORER_FILE).write_text(json.dumps(data, indent=2) + "\n")


def rerank_dict(combiner: tuple[list[float], float], policy: Policy) -> dict[str, Any]:
    return {"top": TOP, "weights": [round(w, 8) for w in combiner[0]],
            "bias": round(combiner[1], 8), "policy": policy.as_dict(),
            "cross_encoder": CROSS_CONFIG}


def fit_cross(base: Path, examples: Sequence[Example], linear: tuple[list[float], float],
              seed: int, folder: Path) -> Any:
    """An adapter trained on the examples' top candidates by ``linear``, saved and reloaded."""
    w, b = np.asarray(linear[0]), linear[1]
    tops = [e.top(e.rows @ w + b) for e in examples]
    trained = train_cross(base, [e.claim.text for e in examples],
                          [[e.candidates[j].quote for j in t] for e, t in
                           zip(examples, tops, strict=True)],
                          [e.labels[t] for e, t in zip(examples, tops, strict=True)], seed=seed)
    shutil.rmtree(folder, ignore_errors=True)
    return trained.save(folder)


def fill_cross(base: Path, adapter: Path, tokenizer: Any, examples: Sequence[Example],
               z1: Sequence[Floats], kept: Sequence[Floats]) -> None:
    """Kept logits for candidates that entered a claim's top by a changed linear stage.

    The fold's saved adapter scores them (in place), so --reuse stays valid after a
    change to the features that moves a few candidates into or out of the top ten.
    """
    missing = [(e, c, [j for j in e.top(z) if np.isnan(c[j])])
               for e, z, c in zip(examples, z1, kept, strict=True)]
    if not any(m for _, _, m in missing):
        return
    model = build_model(base, adapter)
    for e, c, m in missing:
        if m:
            c[m] = predict(model, tokenizer, e.claim.text, [e.candidates[j].quote for j in m])


def cross_logits(model: Any, tokenizer: Any, example: Example, z1: Floats) -> Floats:
    out = np.full(len(z1), np.nan)
    top = example.top(z1)
    out[top] = predict(model, tokenizer, example.claim.text,
                       [example.candidates[j].quote for j in top])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--rationales", type=Path, required=True)
    parser.add_argument("--out", type=Path,
                        default=calibrate.SCORER)
    parser.add_argument("--cv-dir", type=Path, default=Path(".cache/evidence-cv"))
    parser.add_argument("--cache", type=Path, default=Path(".cache/eval"))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--no-cross", action="store_true", help="the linear stage only")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the fold adapters and logits already under --cv-dir (after "
                        "a change that leaves the features and the training alone)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    t_start = time.time()
    settings = Settings()
    claims, index_dir = citations.claims_and_index(args.dataset, args.rationales, settings,
                                                   args.cache)
    settings = settings.model_copy(update={"index_dir": index_dir})
    base = settings.model_path or packaged_model_path()
    words = settings.answer_max_words
    examples = collect(Pipeline(settings), claims, settings.evidence_neighbours)
    report: dict[str, Any] = {
        "claims": len(examples), "folds": args.folds,
        "candidates": sum(len(e.candidates) for e in examples),
        "positives": int(sum(e.labels.sum() for e in examples)), "cv": {}, "cv_pipeline": {}}
    print(f"{report['claims']} claims, {report['candidates']} candidates, "
          f"{report['positives']} of them evidence", flush=True)
    stages = ["linear"] if args.no_cross else ["linear", "rerank"]
    fold = folds_of(len(examples), args.folds)
    held = [[i for i in range(len(examples)) if fold[i] == f] for f in range(args.folds)]
    rest = [[i for i in range(len(examples)) if fold[i] != f] for f in range(args.folds)]

    # Out-of-fold outputs of each stage for every claim.
    z1: list[Floats] = [np.zeros(0)] * len(examples)
    cross: list[Floats] = [np.zeros(0)] * len(examples)
    linears = []
    tokenizer = pair_tokenizer(base)
    for f in range(args.folds):
        linears.append(fit_linear([examples[i] for i in rest[f]]))
        w, b = np.asarray(linears[f][0]), linears[f][1]
        for i in held[f]:
            z1[i] = examples[i].rows @ w + b
        if "rerank" in stages:
            saved = args.cv_dir / f"fold-{f}" / "cross.npz"
            if args.reuse and saved.is_file():
                with np.load(saved) as kept:
                    for i in held[f]:
                        cross[i] = kept[examples[i].claim.claim_id]
                fill_cross(base, args.cv_dir / f"fold-{f}" / "adapter", tokenizer,
                           [examples[i] for i in held[f]], [z1[i] for i in held[f]],
                           [cross[i] for i in held[f]])
                continue
            t0 = time.time()
            model = fit_cross(base, [examples[i] for i in rest[f]], linears[f], SEED + f,
                              args.cv_dir / f"fold-{f}" / "adapter")
            for i in held[f]:
                cross[i] = cross_logits(model, tokenizer, examples[i], z1[i])
            np.savez(saved, allow_pickle=False,
                     **{examples[i].claim.claim_id: cross[i] for i in held[f]})
            print(f"fold {f}: cross-encoder trained in {time.time() - t0:.0f}s", flush=True)

    lin_probs = [sigmoid(z) for z in z1]
    for stage in stages:
        total, asked = Counts(), []
        for f in range(args.folds):
            others = [examples[i] for i in rest[f]]
            lin_policy, _ = choose_policy(others, [lin_probs[i] for i in rest[f]], words)
            probs, policy, rerank = lin_probs, lin_policy, None
            if stage == "rerank":
                combiner = fit_combiner(others, [z1[i] for i in rest[f]],
                                        [cross[i] for i in rest[f]])
                probs = [combined(e, z, c, combiner) for e, z, c in
                         zip(examples, z1, cross, strict=True)]
                policy, _ = choose_policy(others, [probs[i] for i in rest[f]], words)
                rerank = rerank_dict(combiner, policy)
            total.add(counts_for([prefixes(examples[i], probs[i], words) for i in held[f]],
                                 policy))
            folder = args.cv_dir / f"fold-{f}"
            write_scorer(folder, linears[f], lin_policy, rerank, {"fold": f})
            # The held-out claims through the service's own code path, with this fold's scorer.
            fold_settings = settings.model_copy(update={"evidence_model": folder,
                                                        "evidence_rerank": stage == "rerank"})
            asked += citations.ask_all(Pipeline(fold_settings),
                                       [examples[i].claim for i in held[f]], K)
        report["cv"][stage] = {k: round(v, 4) for k, v in total.scores().items()}
        report["cv_pipeline"][stage] = citations.summarize(asked)
        print(f"{stage}, cross-validated, from the scores: {report['cv'][stage]}", flush=True)
        print(f"{stage}, cross-validated, asked through Pipeline.ask: "
              f"{json.dumps(report['cv_pipeline'][stage])}", flush=True)

    # The shipped scorer: stages fit on every claim, combiner and policies on out-of-fold scores.
    linear = fit_linear(examples)
    lin_policy, lin_fit = choose_policy(examples, lin_probs, words)
    rerank = None
    if "rerank" in stages:
        combiner = fit_combiner(examples, z1, cross)
        probs = [combined(e, z, c, combiner) for e, z, c in zip(examples, z1, cross, strict=True)]
        policy, _ = choose_policy(examples, probs, words)
        if not (args.reuse and (args.out / "adapter" / ADAPTER_WEIGHTS).is_file()):
            fit_cross(base, examples, linear, SEED, args.out / "adapter")
        rerank = rerank_dict(combiner, policy)
    about = {"made_by": "python -m eval.quality.train_evidence", "claims": len(examples),
             "data": f"SciFact train claims and their rationales ({args.rationales.name})",
             "k": K, "folds": args.folds, "cross_encoder_int8": settings.evidence_int8,
             "cross_validated": report["cv_pipeline"],
             "seconds": round(time.time() - t_start)}
    write_scorer(args.out, linear, lin_policy, rerank, about)
    print(f"wrote {args.out / SCORER_FILE}; linear policy {lin_policy.as_dict()} "
          f"(out-of-fold F1 {lin_fit['f1']:.4f})")
    # SciFact has no questions: their threshold comes from the seeds (eval.quality.calibrate).
    found = calibrate.calibrate(args.out, SEEDS, calibrate.QUESTIONS, calibrate.OFF_TOPIC)
    calibrate.write(args.out, found)
    report["questions"] = {stage: {k: v for k, v in r.items() if k != "answerable"
                                   and k != "off_topic"} for stage, r in found.items()}
    print(f"question thresholds: {report['questions']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
