"""How well rag.injection tells instructions to a model from ordinary sentences.

    python -m eval.quality.injection \\
        --corpus ../shared/datasets/scifact/corpus.jsonl \\
        --corpus ../shared/datasets/squad2/corpus.jsonl [--json out.json]

Recall on hand-written injected sentences and false positives on hand-written ordinary ones
(eval/data/injection: ``injected.txt``/``ordinary.txt`` were written first and the check was
tuned on them; ``*_heldout.txt`` were written after the last change and measured once), then
the sentences of each BEIR-style corpus (``{"title", "text"}`` a line, split by
rag.sentence_split as answers split them) that the check would drop: every one is a false
positive, since neither corpus addresses a model. The flagged sentences are listed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from eval import DATA
from rag.injection import addressed_to_model
from rag.sentence_split import sentence_spans

SETS = DATA / "injection"


def hand_written() -> dict[str, dict[str, Any]]:
    """Each set: sentences, how many the check flags, and those it gets wrong."""
    out = {}
    for name in ("injected", "ordinary", "injected_heldout", "ordinary_heldout"):
        sentences = (SETS / f"{name}.txt").read_text(encoding="utf-8").splitlines()
        injected = name.startswith("injected")
        flagged = [s for s in sentences if addressed_to_model(s)]
        wrong = [s for s in sentences if addressed_to_model(s) != injected]
        out[name] = {"sentences": len(sentences), "flagged": len(flagged), "wrong": wrong}
    return out


def corpus(path: Path) -> dict[str, Any]:
    """Every sentence of every document's title and text, and those the check flags."""
    sentences = 0
    flagged: list[str] = []
    seconds = 0.0
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            doc = json.loads(line)
            for text in (doc.get("title") or "", doc["text"]):
                for a, b in sentence_spans(text):
                    t = time.perf_counter()
                    hit = addressed_to_model(text[a:b])
                    seconds += time.perf_counter() - t
                    sentences += 1
                    if hit:
                        flagged.append(text[a:b])
    return {"corpus": str(path), "sentences": sentences, "flagged": len(flagged),
            "false_positive_rate": len(flagged) / max(sentences, 1),
            "us_per_sentence": round(seconds / max(sentences, 1) * 1e6, 1),
            "examples": flagged[:50]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, action="append", default=[],
                        help="a corpus.jsonl whose every sentence should pass (repeatable)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sets, corpora = hand_written(), [corpus(p) for p in args.corpus]
    for name, s in sets.items():
        print(f"{name:>17}: {s['flagged']}/{s['sentences']} flagged")
        for sentence in s["wrong"]:
            print(f"{'':>19}wrong: {sentence}")
    for c in corpora:
        print(f"{c['corpus']}: {c['flagged']} of {c['sentences']} sentences flagged "
              f"({c['false_positive_rate']:.4%}), {c['us_per_sentence']} µs a sentence")
        for sentence in c["examples"]:
            print(f"    {sentence}")
    if args.json is not None:
        args.json.write_text(json.dumps({"sets": sets, "corpora": corpora}, indent=2,
                                        ensure_ascii=False))


if __name__ == "__main__":
    main()
