from __future__ import annotations

import json
import random
import re
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from eval.quality import beir, metrics, runner
from rag.cli import main
from rag.config import Settings

SEEDS_DATASET = Path(__file__).resolve().parents[1] / "eval" / "data" / "seeds"


def test_metrics_by_hand() -> None:
    judged = {"a": 2, "b": 1, "z": 0}
    ranked = ["x", "a", "y", "b"]
    # DCG = 2/log2(3) + 1/log2(5); IDCG = 2/log2(2) + 1/log2(3)
    dcg = 2 / 1.5849625007211562 + 1 / 2.321928094887362
    idcg = 2 / 1 + 1 / 1.5849625007211562
    assert metrics.ndcg(ranked, judged, 10) == pytest.approx(dcg / idcg)
    assert metrics.recall(ranked, judged, 1) == 0.0
    assert metrics.recall(ranked, judged, 2) == 0.5
    assert metrics.recall(ranked, judged, 10) == 1.0
    assert metrics.mrr(ranked, judged, 10) == 0.5
    assert metrics.mrr(ranked, judged, 1) == 0.0
    assert metrics.average_precision(ranked, judged, 100) == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert metrics.average_precision(ranked, judged, 2) == pytest.approx((1 / 2) / 2)
    assert metrics.ranking({"a": 1.0, "b": 1.0, "c": 2.0}) == ["c", "b", "a"]


def test_metrics_agree_with_ranx() -> None:
    from ranx import Qrels, Run, evaluate

    rng = random.Random(7)
    docs = [f"d{i}" for i in range(300)]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for q in range(60):
        qid = f"q{q}"
        qrels[qid] = {d: rng.choice([1, 1, 2]) for d in rng.sample(docs, rng.randint(1, 6))}
        scores = rng.sample(range(100_000), 150)
        run[qid] = {d: s / 1000 for d, s in zip(rng.sample(docs, 150), scores, strict=True)}
    ours = metrics.evaluate(run, qrels)
    theirs = evaluate(Qrels(qrels), Run(run), list(metrics.METRICS))
    for name in metrics.METRICS:
        assert ours[name] == pytest.approx(float(theirs[name]), abs=1e-6), name


def test_beir_reader_handles_crlf_and_grades(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    (d / "qrels").mkdir(parents=True)
    (d / "corpus.jsonl").write_text(json.dumps({"_id": "1", "title": "T", "text": "x"}) + "\n"
                                    + json.dumps({"_id": "2", "text": "y"}) + "\n")
    (d / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "x?"}) + "\n"
                                     + json.dumps({"_id": "unjudged", "text": "z?"}) + "\n")
    (d / "qrels" / "test.tsv").write_bytes(b"query-id\tcorpus-id\tscore\r\nq\t1\t2\r\nq\t2\t0\r\n")
    ds = beir.load(d)
    assert ds.qrels == {"q": {"1": 2, "2": 0}} and ds.queries == {"q": "x?"}
    assert ds.corpus["1"] == ("T", "x") and ds.corpus["2"] == ("", "y")


@pytest.mark.parametrize(("breakage", "message"), [
    ("no-corpus", "corpus.jsonl is missing"),
    ("no-qrels", "test.tsv is missing"),
    ("unknown-query", "query id(s) not in queries.jsonl"),
    ("unknown-doc", "corpus id(s) not in corpus.jsonl"),
    ("empty-query", "empty text"),
    ("bad-json", "not JSON"),
])
def test_bad_dataset_folders_fail_clearly(tmp_path: Path, breakage: str, message: str) -> None:
    d = tmp_path / "ds"
    shutil.copytree(SEEDS_DATASET, d)
    qrels = d / "qrels" / "test.tsv"
    if breakage == "no-corpus":
        (d / "corpus.jsonl").unlink()
    elif breakage == "no-qrels":
        qrels.unlink()
    elif breakage == "unknown-query":
        qrels.write_text(qrels.read_text() + "ghost\t000_4b5d5bcc7add4bfe\t1\n")
    elif breakage == "unknown-doc":
        qrels.write_text(qrels.read_text() + "q1\tghost-doc\t1\n")
    elif breakage == "empty-query":
        lines = (d / "queries.jsonl").read_text().splitlines()
        lines[0] = json.dumps({"_id": "q1", "text": "  "})
        (d / "queries.jsonl").write_text("\n".join(lines) + "\n")
    elif breakage == "bad-json":
        (d / "queries.jsonl").write_text("{oops\n")
    with pytest.raises(beir.DatasetError, match=re.escape(message)):
        beir.load(d)
    result = CliRunner().invoke(main, ["eval", "--dataset", str(d), "--retriever", "bm25"])
    assert result.exit_code != 0 and message in result.output


def test_seeds_dataset_evaluates_end_to_end(tmp_path: Path) -> None:
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    args = ["--index", str(tmp_path / "unused"), "eval", "--dataset", str(SEEDS_DATASET),
            "--retriever", "bm25,dense,hybrid", "--json", str(out), "--plot", str(png),
            "--cache", str(tmp_path / "cache")]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "ndcg@10" in first.output and "hybrid" in first.output
    report = json.loads(out.read_text())
    assert report["dataset"] == "seeds" and report["queries"] == 20
    for name in ("bm25", "dense", "hybrid"):
        r = report["retrievers"][name]
        assert set(r) == {"ndcg@10", "recall@1", "recall@5", "recall@10", "recall@100",
                          "mrr@10", "map@100", "latency_ms", "build_s"}
        assert r["recall@100"] == 1.0 and r["ndcg@10"] >= 0.9
        assert set(report["per_query"][name]) == {f"q{i}" for i in range(1, 21)}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The second run reuses the cached index.
    cached = list((tmp_path / "cache").iterdir())
    again = CliRunner().invoke(main, args[:-2] + ["--cache", str(tmp_path / "cache"),
                                                  "--limit", "5"])
    assert again.exit_code == 0 and "5 queries" in again.output
    assert list((tmp_path / "cache").iterdir()) == cached


def test_plot_without_matplotlib_names_the_extra_before_evaluating(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the [plot] extra were absent
    png, cache = tmp_path / "r.png", tmp_path / "cache"
    result = CliRunner().invoke(main, ["--index", str(tmp_path / "unused"), "eval", "--dataset",
                                       str(SEEDS_DATASET), "--retriever", "bm25", "--plot",
                                       str(png), "--cache", str(cache)])
    assert result.exit_code == 1
    assert "--plot needs matplotlib: pip install 'rag-cited[plot]'" in result.output
    assert not cache.exists() and not png.exists()


def test_bench_without_httpx_names_the_extra(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)  # as if the [bench] extra were absent
    result = CliRunner().invoke(main, ["bench", "--dataset", str(SEEDS_DATASET), "--cache",
                                       str(tmp_path / "bench")])
    assert result.exit_code == 1
    assert "rag bench needs httpx: pip install 'rag-cited[bench]'" in result.output
    assert not (tmp_path / "bench").exists()


def test_documents_join_title_and_text() -> None:
    ds = beir.load(SEEDS_DATASET)
    docs = {d.doc_id: d for d in runner.documents(ds)}
    assert docs["004_235fcfc7bfbef7ab"].text.startswith(
        "U.S. reluctance to share technical data may hinder defense cooperation with Japan\n\n")
    assert Settings().model_name == "all-MiniLM-L6-v2"


def test_bench_measures_our_side_and_reports_ratios(tmp_path: Path) -> None:
    """`rag bench` minus txtai (whose virtualenv takes minutes to build): our real side."""
    import subprocess
    import sys

    from eval.bench import txtai_race as bench

    ds = beir.load(Path(__file__).resolve().parents[1] / "eval" / "data" / "seeds")
    work = tmp_path / "seeds"
    chunks = bench.prepare(ds, Settings(), work)
    texts = [json.loads(line) for line in (work / "chunks.jsonl").read_text().splitlines()]
    assert chunks == len(texts) == 15 and {t["doc"] for t in texts} == set(ds.corpus)
    out = work / "ours.json"
    subprocess.run([sys.executable, "-m", "eval.bench.race_ours", str(work), "ours", str(out)],
                   check=True, timeout=300)
    ours = bench.summarise(json.loads(out.read_text()), ds, None)
    assert ours["chunks"] == 15 and ours["ndcg@10"] > 0.9 and ours["peak_rss_mb"] > 0
    assert ours["search_p50_ms"] <= ours["search_p99_ms"]
    slower = {**ours, "ingest_s": ours["ingest_s"] * 2, "search_p50_ms": ours["search_p50_ms"] * 3,
              "search_p99_ms": ours["search_p99_ms"] * 3}
    assert bench.ratios(ours, slower) == {"ingest": 2.0, "search_p50": 3.0, "search_p99": 3.0}
