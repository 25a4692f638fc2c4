"""Fit the evidence scorer on questions and claims together, cross-validated, and write it out.

    python -m eval.quality.train_evidence --questions ../shared/datasets/squad2 \\
        --dataset ../shared/datasets/scifact \\
        --rationales ../shared/datasets/scifact/rationales/train.jsonl \\
        [--out rag/data/evidence] [--folds 4] [--no-cross] [--reuse] [--json report.json]

Every question (SQuAD 2.0's, half of them unanswerable) and every claim (SciFact's
train claims) is retrieved for exactly as ``POST /v1/ask`` does and its candidates get
the composer's features (eval.quality.evidence_data).

- Linear stage: logistic regression on standardized features, written back as
  weights on the raw features.
- Cross-encoder stage (unless --no-cross): a LoRA adapter, an evidence head and an
  answer-phrase head on the packaged MiniLM (eval.quality.evidence_cross), trained on
  each example's best candidates by the linear stage; then a logistic regression
  over the two stages' logits (rag.scorer.combiner_inputs).
- Answerability: a logistic regression over the citable candidates' logits
  (rag.scorer.ANSWERABILITY_INPUTS), learned from the unanswerable questions and the
  claims without evidence; then the policy (abstention, citation and answer-phrase
  thresholds) with the best objective (eval.quality.evidence_policy).

Cross-validation holds out whole articles (questions) and claims: fold f is scored by a
linear stage and an adapter fit without it, and by a combiner, answerability model and
policy chosen on the other folds' out-of-fold outputs. Each fold's scorer is written
under ``--cv-dir`` with the articles and claims it never saw (``held_out.json``), and
the held-out questions and claims are asked through the real ``Pipeline.ask`` with it
(eval.quality.questions, eval.quality.citations): the reported figures come from the
service's own code path. The shipped scorer is then fit on everything. Test claims and
the articles of other question sets are never read.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eval.quality import citations, questions, runner, squad
from eval.quality.evidence_cross import (
    CROSS_CONFIG,
    TOP,
    Bottom,
    below_of,
)
from eval.quality.evidence_data import Example, assign_folds, collect_claims, collect_questions
from eval.quality.evidence_fit import cross_outputs, fit_cross, fit_linear, stage_fit
from eval.quality.evidence_policy import Outputs
from eval.quality.questions import HELD_OUT
from eval.quality.rationales import Claim
from rag.config import Settings
from rag.crossencoder import ADAPTER_WEIGHTS
from rag.embedding import packaged_model_path
from rag.evidence import FEATURES
from rag.pipeline import Pipeline
from rag.scorer import FORMAT, SCORER_FILE, Answerability, Policy

SHIPPED = Path(__file__).resolve().parents[2] / "rag" / "data" / "evidence"
K = 5


def write_scorer(folder: Path, linear: tuple[list[float], float],
                 stages: dict[str, tuple[Any, Answerability, Policy]],
                 about: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _, lin_answerability, lin_policy = stages["linear"]
    data: dict[str, Any] = {
        "format": FORMAT, "features": list(FEATURES),
        "linear": {"weights": [round(w, 8) for w in linear[0]], "bias": round(linear[1], 8),
                   "answerability": lin_answerability.as_dict(),
                   "policy": lin_policy.as_dict()},
        "rerank": None, "about": about}
    if "rerank" in stages:
        combiner, answerability, policy = stages["rerank"]
        data["rerank"] = {"top": TOP, "weights": [round(w, 8) for w in combiner[0]],
                          "bias": round(combiner[1], 8),
                          "answerability": answerability.as_dict(), "policy": policy.as_dict(),
                          "cross_encoder": CROSS_CONFIG}
    (folder / SCORER_FILE).write_text(json.dumps(data, indent=2) + "\n")


def collect(settings: Settings, args: argparse.Namespace
            ) -> tuple[list[Example], squad.QuestionSet, Path]:
    """Every question and claim as the composer sees it (cached under --cache)."""
    qs = squad.load(args.questions)
    claims, claims_index = citations.claims_and_index(args.dataset, args.rationales, settings,
                                                      args.cache)
    questions_index, _ = runner.cached_index(qs.dataset, settings, args.cache)
    saved = args.cache / f"examples-{questions_index.parent.name}-{claims_index.parent.name}.pkl"
    examples: list[Example]
    if args.reuse and saved.is_file():
        with saved.open("rb") as f:
            examples = pickle.load(f)
        return examples, qs, claims_index
    n = settings.evidence_neighbours
    examples = collect_questions(Pipeline(settings.model_copy(
        update={"index_dir": questions_index})), qs.questions, n)
    examples += collect_claims(Pipeline(settings.model_copy(update={"index_dir": claims_index})),
                               claims, n)
    with saved.open("wb") as f:
        pickle.dump(examples, f)
    return examples, qs, claims_index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--rationales", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=SHIPPED)
    parser.add_argument("--cv-dir", type=Path, default=Path(".cache/evidence-cv"))
    parser.add_argument("--cache", type=Path, default=Path(".cache/eval"))
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--no-cross", action="store_true", help="the linear stage only")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the examples, fold adapters and logits already made")
    parser.add_argument("--one-cross", action="store_true",
                        help="train the cross-encoder once, without fold 0, measure it on fold "
                             "0 and ship it (a quarter of the training time)")
    parser.add_argument("--cv-stages", nargs="+", choices=("linear", "rerank"), default=None,
                        help="the stages asked through Pipeline.ask (default: every stage fit)")
    parser.add_argument("--cross-set", nargs="+", default=[], metavar="KEY=JSON",
                        help="a variant of the cross-encoder's training (CROSS_CONFIG), e.g. "
                             "claim_weight=3 train_examples=7000; recorded in scorer.json")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    for item in args.cross_set:
        key, _, value = item.partition("=")
        if key not in CROSS_CONFIG:
            parser.error(f"--cross-set: {key} is not one of {sorted(CROSS_CONFIG)}")
        CROSS_CONFIG[key] = json.loads(value)
    t_start = time.time()
    settings = Settings()
    base = settings.model_path or packaged_model_path()
    words = settings.answer_max_words
    examples, qs, claims_index = collect(settings, args)
    report: dict[str, Any] = {
        "examples": len(examples), "folds": args.folds,
        "questions": sum(e.kind == "question" for e in examples),
        "claims": sum(e.kind == "claim" for e in examples),
        "candidates": sum(len(e.candidates) for e in examples),
        "positives": int(sum(e.labels.sum() for e in examples)), "cv": {}}
    print(f"{report['questions']} questions and {report['claims']} claims, "
          f"{report['candidates']} candidates, {report['positives']} positive "
          f"({time.time() - t_start:.0f} s)", flush=True)
    stages = ["linear"] if args.no_cross else ["linear", "rerank"]
    fold = assign_folds(examples, args.folds)
    held = [[i for i in range(len(examples)) if fold[i] == f] for f in range(args.folds)]
    rest = [[i for i in range(len(examples)) if fold[i] != f] for f in range(args.folds)]

    # Out-of-fold outputs of each stage for every example.
    outputs = [Outputs(np.zeros(0)) for _ in examples]
    linears = []
    bottom = Bottom(base, below_of(base, CROSS_CONFIG))
    for f in range(args.folds):
        linears.append(fit_linear([examples[i] for i in rest[f]]))
        w, b = np.asarray(linears[f][0]), linears[f][1]
        for i in range(len(examples)):
            if fold[i] == f:
                outputs[i] = Outputs(examples[i].rows @ w + b)
        if "rerank" not in stages or (args.one_cross and f > 0):
            continue
        saved = args.cv_dir / f"fold-{f}" / "cross.pkl"
        if args.reuse and saved.is_file():
            with saved.open("rb") as fh:
                kept = pickle.load(fh)
            for i in held[f]:
                outputs[i] = kept[i]
            continue
        t0 = time.time()
        z_rest = [examples[i].rows @ w + b for i in rest[f]]
        model = fit_cross(bottom, [examples[i] for i in rest[f]], z_rest, f,
                          args.cv_dir / f"fold-{f}" / "adapter")
        for i, o in zip(held[f], cross_outputs(model, bottom, [examples[i] for i in held[f]],
                                               [outputs[i].linear for i in held[f]]),
                        strict=True):
            outputs[i] = o
        with saved.open("wb") as fh:
            pickle.dump({i: outputs[i] for i in held[f]}, fh)
        print(f"fold {f}: cross-encoder trained and read in {time.time() - t0:.0f} s", flush=True)

    partial = "rerank" in stages and args.one_cross
    fitted_linear = []
    for f in range(args.folds):
        fitted: dict[str, tuple[Any, Answerability, Policy]] = {}
        for stage in stages if not partial else ["linear"]:
            combiner, answerability, policy, _ = stage_fit(
                [examples[i] for i in rest[f]], [outputs[i] for i in rest[f]],
                stage == "rerank", words)
            fitted[stage] = (combiner, answerability, policy)
        fitted_linear.append(fitted["linear"])
        write_fold(args.cv_dir / f"fold-{f}", linears[f], fitted, examples, held[f], {"fold": f})
    roots = {stage: args.cv_dir for stage in stages}
    read = list(range(len(examples)))  # the examples with the cross-encoder's outputs
    if partial:
        # The one adapter (fit without fold 0) is measured on fold 0, whose articles are
        # split in two: each half is scored by a combiner, answerability model and policy
        # chosen on the other half.
        read = held[0]
        roots["rerank"] = args.cv_dir / "rerank"
        half = assign_folds([examples[i] for i in read], 2)
        for h in range(2):
            train = [i for i, k in zip(read, half, strict=True) if k != h]
            combiner, answerability, policy, _ = stage_fit(
                [examples[i] for i in train], [outputs[i] for i in train], True, words)
            folder = roots["rerank"] / f"half-{h}"
            write_fold(folder, linears[0], {"linear": fitted_linear[0],
                                            "rerank": (combiner, answerability, policy)},
                       examples, [i for i, k in zip(read, half, strict=True) if k == h],
                       {"fold": 0, "half": h})
            (folder / "adapter").unlink(missing_ok=True)
            (folder / "adapter").symlink_to((args.cv_dir / "fold-0" / "adapter").resolve())
    report["cv"] = {stage: cross_validate(settings, args, stage, roots[stage], qs,
                                          claims_index, examples)
                    for stage in args.cv_stages or stages}

    # The shipped scorer: the linear stage fit on everything; combiner, answerability and
    # policy on the out-of-fold outputs; with --one-cross, fold 0's adapter.
    linear = fit_linear(examples)
    shipped: dict[str, tuple[Any, Answerability, Policy]] = {}
    report["fit"] = {}
    for stage in stages:
        use = read if stage == "rerank" else list(range(len(examples)))
        combiner, answerability, policy, fit = stage_fit(
            [examples[i] for i in use], [outputs[i] for i in use], stage == "rerank", words)
        shipped[stage] = (combiner, answerability, policy)
        report["fit"][stage] = {"policy": policy.as_dict(), "out_of_fold": fit}
    if partial:
        shutil.rmtree(args.out / "adapter", ignore_errors=True)
        shutil.copytree(args.cv_dir / "fold-0" / "adapter", args.out / "adapter")
    elif "rerank" in stages and not (args.reuse and (args.out / "adapter" / ADAPTER_WEIGHTS)
                                     .is_file()):
        w, b = np.asarray(linear[0]), linear[1]
        fit_cross(bottom, examples, [e.rows @ w + b for e in examples], 0, args.out / "adapter")
    about = {"made_by": "python -m eval.quality.train_evidence",
             "questions": report["questions"], "claims": report["claims"],
             "data": f"{args.questions.name} questions; SciFact train claims and their "
                     f"rationales ({args.rationales.name})",
             "k": K, "folds": args.folds, "cross_encoder_int8": settings.evidence_int8,
             "cross_encoder_fit_on": "folds 1-3, measured on fold 0" if partial else "all",
             "cross_validated": report["cv"], "seconds": round(time.time() - t_start)}
    write_scorer(args.out, linear, shipped, about)
    print(f"wrote {args.out / SCORER_FILE}: {json.dumps(report['fit'])}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def write_fold(folder: Path, linear: tuple[list[float], float],
               stages: dict[str, tuple[Any, Answerability, Policy]],
               examples: Sequence[Example], held: Sequence[int], about: dict[str, Any]) -> None:
    """A scorer not fit on ``held``, and the articles and claims it may be asked about."""
    write_scorer(folder, linear, stages, about)
    held_out = {"articles": sorted({examples[i].group for i in held
                                    if examples[i].kind == "question"}),
                "claims": sorted(examples[i].source.claim_id  # type: ignore[union-attr]
                                 for i in held if examples[i].kind == "claim")}
    (folder / HELD_OUT).write_text(json.dumps(held_out, indent=1) + "\n")


def cross_validate(settings: Settings, args: argparse.Namespace, stage: str, root: Path,
                   qs: squad.QuestionSet, claims_index: Path,
                   examples: Sequence[Example]) -> dict[str, Any]:
    """Every question and claim held out by a scorer under ``root`` asked through
    ``Pipeline.ask`` with that scorer."""
    claims = {e.source.claim_id: e.source for e in examples if isinstance(e.source, Claim)}
    questions_index, _ = runner.cached_index(qs.dataset, settings, args.cache)
    staged = settings.model_copy(update={"evidence_rerank": stage == "rerank"})
    held = {f.parent: json.loads(f.read_text()) for f in sorted(root.glob(f"*/{HELD_OUT}"))}
    articles = {a for h in held.values() for a in h["articles"]}
    subset = dataclasses.replace(qs, questions=[q for q in qs.questions if q.doc_id in articles])
    records = questions.ask_all(staged, subset, questions_index, K, root)
    asked = []
    for folder, h in held.items():
        pipeline = Pipeline(staged.model_copy(update={"index_dir": claims_index,
                                                      "evidence_model": folder}))
        asked += citations.ask_all(pipeline, [claims[c] for c in h["claims"]], K)
    out = {"questions": questions.summarize(records), "claims": citations.summarize(asked)}
    print(f"{stage}, cross-validated through Pipeline.ask: {json.dumps(out)}", flush=True)
    return out


if __name__ == "__main__":
    main()
