"""CLIMATE-FEVER as a second citation benchmark: Wikipedia sentences and climate claims.

    python -m eval.quality.climate_fever --source climate-fever.jsonl --out .cache/climate-fever
    rag eval --task citations --dataset .cache/climate-fever \\
        --rationales .cache/climate-fever/rationales.jsonl

CLIMATE-FEVER (Diggelmann et al. 2020, tdiggelm/climate-fever-dataset) gives each of
its 1,535 claims five Wikipedia sentences, each labelled SUPPORTS, REFUTES or
NOT_ENOUGH_INFO by annotators. This writes them in the layout ``rag eval`` reads:
one document per Wikipedia article made of its sentences that the dataset holds
(in article order, joined by spaces, like SciFact's abstracts), the claims as
queries, and a rationales file in which every SUPPORTS or REFUTES sentence is a
rationale of its own. Nothing here was used to fit the evidence scorer, so it
measures how the scorer carries over from scientific abstracts to an encyclopedia.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EVIDENCE = {"SUPPORTS", "REFUTES"}


def convert(source: Path, out: Path) -> dict[str, int]:
    claims = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()
              if line.strip()]
    articles: dict[str, dict[int, str]] = {}
    for claim in claims:
        for ev in claim["evidences"]:
            title, _, number = ev["evidence_id"].rpartition(":")
            articles.setdefault(title, {})[int(number)] = " ".join(ev["evidence"].split())
    ids = {title: f"w{n}" for n, title in enumerate(sorted(articles))}
    spans: dict[str, dict[int, tuple[int, int]]] = {}
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for title, sentences in articles.items():
            text, offset, where = [], len(title) + 2, {}
            for number in sorted(sentences):
                where[number] = (offset, offset + len(sentences[number]))
                text.append(sentences[number])
                offset += len(sentences[number]) + 1
            spans[title] = where
            f.write(json.dumps({"_id": ids[title], "title": title, "text": " ".join(text)})
                    + "\n")
    with (out / "queries.jsonl").open("w", encoding="utf-8") as q, \
            (out / "rationales.jsonl").open("w", encoding="utf-8") as r, \
            (out / "qrels" / "test.tsv").open("w", encoding="utf-8") as qrels:
        qrels.write("query-id\tcorpus-id\tscore\n")
        for claim in claims:
            cid = f"c{claim['claim_id']}"
            q.write(json.dumps({"_id": cid, "text": claim["claim"]}) + "\n")
            evidence: dict[str, list[list[int]]] = {}
            sentence_spans: dict[str, list[list[int]]] = {}
            for ev in claim["evidences"]:
                title, _, number = ev["evidence_id"].rpartition(":")
                doc = ids[title]
                order = sorted(spans[title])
                sentence_spans[doc] = [list(spans[title][n]) for n in order]
                if ev["evidence_label"] in EVIDENCE:
                    evidence.setdefault(doc, []).append([order.index(int(number))])
            for doc in evidence:
                qrels.write(f"{cid}\t{doc}\t1\n")
            r.write(json.dumps({"id": cid, "claim": claim["claim"], "evidence": evidence,
                                "sentence_spans": {d: s for d, s in sentence_spans.items()
                                                   if d in evidence}}) + "\n")
    return {"claims": len(claims), "articles": len(articles),
            "with_evidence": sum(1 for c in claims if any(
                e["evidence_label"] in EVIDENCE for e in c["evidences"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, required=True, help="climate-fever.jsonl")
    parser.add_argument("--out", type=Path, default=Path(".cache/climate-fever"))
    args = parser.parse_args()
    print(json.dumps(convert(args.source, args.out)))


if __name__ == "__main__":
    main()
