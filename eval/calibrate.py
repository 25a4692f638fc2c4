"""Calibrate the abstention threshold on the seeds.

    python -m eval.calibrate [--docs seeds] [--dataset eval/data/seeds]

Indexes the documents, asks every question of the dataset (answerable) and every
line of eval/data/off_topic.txt (not answerable) with abstention disabled, and
prints the best sentence score of each. The suggested threshold is the midpoint
of the gap between the highest off-topic and the lowest on-topic score.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import rag  # noqa: F401
from rag.config import Settings
from rag.pipeline import Pipeline

HERE = Path(__file__).parent


def best_cosines(pipeline: Pipeline, questions: list[str]) -> list[float]:
    return [float(pipeline.ask(q).provenance["best_score"] or 0.0) for q in questions]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=Path, default=Path("seeds"))
    parser.add_argument("--dataset", type=Path, default=HERE / "data" / "seeds")
    parser.add_argument("--off-topic", type=Path, default=HERE / "data" / "off_topic.txt")
    args = parser.parse_args()
    on = [json.loads(line)["text"] for line in
          (args.dataset / "queries.jsonl").read_text().splitlines() if line.strip()]
    off = [line.strip() for line in args.off_topic.read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Pipeline(Settings(index_dir=Path(tmp) / "index", abstain_threshold=-1.0))
        pipeline.ingest([args.docs])
        on_scores, off_scores = best_cosines(pipeline, on), best_cosines(pipeline, off)
    for label, qs, scores in (("answerable", on, on_scores), ("off-topic", off, off_scores)):
        print(f"\n{label} ({len(qs)}): min {min(scores):.3f}  max {max(scores):.3f}")
        for q, s in sorted(zip(qs, scores, strict=True), key=lambda x: x[1]):
            print(f"  {s:.3f}  {q}")
    lo, hi = max(off_scores), min(on_scores)
    verdict = "separable" if lo < hi else "NOT separable"
    print(f"\noff-topic max {lo:.3f}, answerable min {hi:.3f}: {verdict}; "
          f"suggested threshold {(lo + hi) / 2:.3f}")


if __name__ == "__main__":
    main()
