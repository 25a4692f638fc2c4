"""Writes that cost what they change: commits, checkpointed ingest, segments, merges.

    python -m eval.bench.commit --dataset ../shared/datasets/scifact [--synthetic 1000000]
        [--repeat 11] [--ingest-profile fast|default|none] [--json out.json]
    rag bench --commit --dataset ../shared/datasets/scifact    (the same, with the defaults)

- one-document commit: `rag ingest FILE` of a new three-line .txt, in-process with the model
  loaded (what the command costs after its start-up), into indexes of 15 chunks (the seeds),
  of SciFact (~12k chunks; the `rag eval` index, .cache/eval) and of a synthetic index
  (random unit vectors, generated text; built once under the cache). Each is timed on a copy
  whose segment files are hard links (a segment never changes), so the cache stays as it is,
  the three taking turns commit by commit;
- SciFact ingest wall time (and the process's CPU time) with a checkpoint every
  RAG_INGEST_CHECKPOINT_DOCS (500) documents and with none, merges included, twice each in turn,
  in the fast-ingest profile (int8 model, sentence
  vectors in context; --ingest-profile default for the other), where the model costs least
  and what a checkpoint costs would show most;
- search p50 (k=10, the query embedded beforehand) over SciFact cut into 1, 8 and 32
  segments (eval/bench/segmented.py), with their hybrid nDCG@10 to show they agree;
- merge time: the 32 segments into 1, and ten one-document segments of the synthetic index.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from eval import SEEDS
from eval.bench.segmented import rewrite
from eval.harness import percentiles
from eval.quality import beir, metrics
from eval.quality.runner import cached_index, documents, run_retriever
from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder, model_id
from rag.index import Index, read_snapshot
from rag.pipeline import Pipeline
from rag.types import Chunk, Document
from rag.writer import IndexWriter

SHAPES = (1, 8, 32)
DIMENSION = 384


def linked_copy(source: Path, target: Path) -> None:
    """An index folder whose files are hard links to ``source``'s (none is written in place:
    segments never change, manifests and CURRENT are replaced); its own locks."""
    shutil.copytree(source, target, copy_function=os.link,
                    ignore=shutil.ignore_patterns(".lock", ".merge.lock"))


def _note(i: int) -> str:
    return (f"Field note {i}\n\nThe heron count at the north station was {40 + i} on the "
            f"morning of day {i}.\nRain fell after noon; the river rose by {i % 7 + 2} cm.\n")


def time_commits(indexes: dict[str, Path], pipeline_for: Callable[[Path], Pipeline],
                 work: Path, repeat: int) -> dict[str, dict[str, Any]]:
    """``repeat`` one-document ingests into a linked copy of each index, taking turns (one
    into each, then the next round), so that this machine's drift falls on all alike."""
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        pipelines = {}
        for name, index in indexes.items():
            linked_copy(index, Path(tmp) / name / "index")
            pipelines[name] = pipeline_for(Path(tmp) / name / "index")
        warm = Path(tmp) / "warm" / "index"  # first calls load tokenizers and parsers
        pipeline_for(warm).ingest([SEEDS / next(p.name for p in SEEDS.iterdir())])
        seconds: dict[str, list[float]] = {name: [] for name in indexes}
        for i in range(repeat):
            for name, pipeline in pipelines.items():
                path = Path(tmp) / name / f"note_{i}.txt"
                path.write_text(_note(i))
                t0 = time.perf_counter()
                report = pipeline.ingest([path])
                seconds[name].append(time.perf_counter() - t0)
                assert report.added == [f"note_{i}"], report.as_dict()
        out = {name: {"chunks": int(read_snapshot(index).manifest["chunks"]),  # type: ignore[union-attr]
                      "segments": len(read_snapshot(index).segments),  # type: ignore[union-attr]
                      "commit_s_median": round(statistics.median(seconds[name]), 3),
                      "commit_s": [round(s, 3) for s in seconds[name]]}
               for name, index in indexes.items()}
        # The one-document segments just written, merged as the policy would (they are the
        # smallest): what a merge of small segments costs inside a big index.
        big = pipelines[list(indexes)[-1]]
        out[list(indexes)[-1]]["merge_small"] = _compact(big, len(big.segments()) - repeat + 1)
        return out


def synthetic(folder: Path, chunks: int, per_segment: int = 100_000,
              log: Callable[[str], None] = print) -> Path:
    """An index of ``chunks`` chunks (ten a document, two sentences a chunk) of generated
    words with random unit vectors, in segments of ``per_segment`` chunks; built once."""
    root = folder / "index"
    if (folder / "built.json").is_file():
        return root
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    vocabulary = np.array(sorted({"".join(rng.choice(syllables, 3)) for _ in range(30_000)}))
    zipf = 1.0 / np.arange(1, len(vocabulary) + 1)
    t0 = time.perf_counter()
    for s in range(0, chunks, per_segment):
        n_docs = min(per_segment, chunks - s) // 10
        words = vocabulary[rng.choice(len(vocabulary), n_docs * 200, p=zipf / zipf.sum())]
        with IndexWriter(root, model_id("all-MiniLM-L6-v2", "onnx"), DIMENSION,
                         {"synthetic": True}) as w:
            for d in range(n_docs):
                doc_id = f"syn{s // 10 + d:07d}"
                sentences = [" ".join(words[(d * 20 + k) * 10:(d * 20 + k + 1) * 10]).capitalize()
                             + "." for k in range(20)]
                text = " ".join(sentences)
                starts = np.cumsum([0] + [len(x) + 1 for x in sentences])
                doc = Document(doc_id, doc_id, f"synthetic:{doc_id}", text, doc_id)
                chunk_list = [Chunk(doc_id, f"{doc_id}#{c}", c, text[starts[2 * c]:
                                    starts[2 * c + 2] - 1], int(starts[2 * c]),
                                    int(starts[2 * c + 2] - 1), 40) for c in range(10)]
                spans = [(k // 2, int(starts[k]), int(starts[k + 1] - 1)) for k in range(20)]
                vectors = rng.standard_normal((30, DIMENSION)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                w.add(doc, chunk_list, vectors[:10], spans, vectors[10:])
            w.commit()
        log(f"synthetic index: {s + n_docs * 10:,} chunks ({time.perf_counter() - t0:.0f} s)")
    (folder / "built.json").write_text(json.dumps({"chunks": chunks,
                                                   "build_s": time.perf_counter() - t0}))
    return root


def ingest_time(docs: list[Document], settings: Settings, embedder: SentenceTransformerEmbedder,
                work: Path, checkpoint: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        pipeline = Pipeline(settings.model_copy(update={
            "index_dir": Path(tmp) / "index", "ingest_checkpoint_docs": checkpoint}),
            embedder=embedder)
        t0, cpu0 = time.perf_counter(), time.process_time()
        report = pipeline.ingest_documents(docs)
        pipeline.wait_for_merges()
        seconds = time.perf_counter() - t0
        # This process's CPU, all its threads: what other work on the machine moves least.
        return {"checkpoint_docs": checkpoint, "seconds": round(seconds, 1),
                "cpu_s": round(time.process_time() - cpu0, 1), "chunks": report.chunks,
                "segments": len(pipeline.segments())}


def search_shapes(index: Path, ds: beir.Dataset, settings: Settings,
                  embedder: SentenceTransformerEmbedder, work: Path) -> dict[str, Any]:
    queries = list(ds.queries.values())
    vectors = embedder.embed_queries(queries)
    out: dict[str, Any] = {}
    for n in SHAPES:
        root = work / f"{ds.name}-{n}-segments"
        if not (root / "CURRENT").is_file():
            shutil.rmtree(root, ignore_errors=True)
            rewrite(Index(index), root, commits=n)
        pipeline = Pipeline(settings.model_copy(update={"index_dir": root}), embedder=embedder)
        row: dict[str, Any] = {"segments": len(pipeline.segments())}
        for name in ("hybrid", "bm25", "dense"):
            retriever = pipeline.retriever(name)
            retriever.search(queries[0], 10, vectors[0])
            times = []
            for q, v in zip(queries, vectors, strict=True):
                t0 = time.perf_counter()
                retriever.search(q, 10, v)
                times.append((time.perf_counter() - t0) * 1000)
            row[f"{name}_ms"] = percentiles(times, (50, 99))
        run, _ = run_retriever(pipeline, "hybrid", ds, progress=False)
        row["hybrid_ndcg@10"] = round(metrics.evaluate(run, ds.qrels)["ndcg@10"], 4)
        out[str(n)] = row
    return out


def compact_time(index: Path, work: Path, settings: Settings,
                 max_segments: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        root = Path(tmp) / "index"
        linked_copy(index, root)
        return _compact(Pipeline(settings.model_copy(update={"index_dir": root})), max_segments)


def _compact(pipeline: Pipeline, max_segments: int) -> dict[str, Any]:
    before = len(pipeline.segments())
    t0 = time.perf_counter()
    reports = pipeline.compact(max_segments)
    return {"segments_before": before, "segments_after": len(pipeline.segments()),
            "merges": len(reports), "merged_chunks": sum(r.chunks for r in reports),
            "merge_s": round(time.perf_counter() - t0, 2)}


# The fast-ingest profile the README offers (as eval/bench/txtai_race.py runs it).
FAST = {"embed_backend": "onnx-int8", "sentence_vectors": "context"}


def run(dataset: Path, settings: Settings, cache: Path, eval_cache: Path, synthetic_chunks: int,
        repeat: int, ingest: str | None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """``ingest``: the profile ("fast" or "default") to time SciFact ingests in, or None."""
    cache.mkdir(parents=True, exist_ok=True)
    ds = beir.load(dataset, "test")
    embedder = SentenceTransformerEmbedder(settings.model_name, settings.model_path,
                                           cache / "onnx", settings.embed_backend)
    quiet = settings.model_copy(update={"auto_merge": False, "onnx_dir": cache / "onnx"})

    def pipeline_for(root: Path) -> Pipeline:
        return Pipeline(quiet.model_copy(update={"index_dir": root}), embedder=embedder)

    seeds = cache / "seeds" / "index"
    if not (seeds / "CURRENT").is_file():
        Pipeline(quiet.model_copy(update={"index_dir": seeds}), embedder=embedder).ingest([SEEDS])
    scifact, _ = cached_index(ds, settings, eval_cache)
    big = synthetic(cache / f"synthetic-{synthetic_chunks}", synthetic_chunks, log=log)
    report: dict[str, Any] = {"commit": time_commits(
        {"seeds": seeds, ds.name: scifact, "synthetic": big}, pipeline_for, cache, repeat)}
    log(f"one-document commits: {json.dumps(report['commit'])}")
    report["search"] = search_shapes(scifact, ds, quiet, embedder, cache)
    log(f"search by segments: {json.dumps(report['search'])}")
    report["merge_32_to_1"] = compact_time(cache / f"{ds.name}-32-segments" , cache, quiet, 1)
    log(f"merge 32 -> 1: {json.dumps(report['merge_32_to_1'])}")
    if ingest is not None:
        docs = documents(ds)
        profile = settings.model_copy(update=FAST if ingest == "fast" else {})
        model = SentenceTransformerEmbedder(profile.model_name, profile.model_path,
                                            cache / "onnx", profile.embed_backend)
        report["ingest"] = [{"profile": ingest, **ingest_time(docs, profile, model, cache, c)}
                            for c in (len(docs), settings.ingest_checkpoint_docs) * 2]
        log(f"ingest: {json.dumps(report['ingest'])}")
    return report


def table(report: dict[str, Any]) -> str:
    c = report["commit"]
    seeds = c["seeds"]["commit_s_median"]
    lines = ["one-document commit (median s):"]
    for name, r in c.items():
        lines.append(f"  {name:<10} {r['chunks']:>10,} chunks  {r['commit_s_median']:.3f} s  "
                     f"({r['commit_s_median'] / seeds:.2f}x the seeds)")
    lines.append("search by segment count (ms p50, query embedded beforehand):")
    for n, r in report["search"].items():
        lines.append(f"  {n:>3} segments: hybrid {r['hybrid_ms']['p50']}, bm25 "
                     f"{r['bm25_ms']['p50']}, dense {r['dense_ms']['p50']}; hybrid nDCG@10 "
                     f"{r['hybrid_ndcg@10']}")
    m = report["merge_32_to_1"]
    lines.append(f"merge {m['segments_before']} -> {m['segments_after']} segments: "
                 f"{m['merge_s']} s")
    small = c["synthetic"].get("merge_small")
    if small:
        lines.append(f"merge of {small['segments_before'] - small['segments_after'] + 1} "
                     f"one-document segments in the synthetic index: {small['merge_s']} s")
    for r in report.get("ingest", []):
        lines.append(f"ingest ({r['profile']}), a checkpoint every {r['checkpoint_docs']} "
                     f"documents: {r['seconds']} s, {r['cpu_s']} s of CPU ({r['segments']} "
                     "segments)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--synthetic", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--ingest-profile", choices=["fast", "default", "none"], default="fast")
    parser.add_argument("--cache", type=Path, default=Path(".cache/bench/commit"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report = run(args.dataset, Settings(), args.cache.resolve(), Path(".cache/eval"),
                 args.synthetic, args.repeat,
                 None if args.ingest_profile == "none" else args.ingest_profile)
    print(table(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
