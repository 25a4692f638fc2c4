"""`rag eval` and `rag bench`: the measurements, run from the command line (eval/)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from rag.cli_base import errors
from rag.config import DEFAULT_K, MAX_K, RETRIEVER_NAMES


@click.command("eval")
@click.option("--task", type=click.Choice(["retrieval", "citations", "questions"]),
              default="retrieval", show_default=True,
              help="retrieval: rank documents (qrels); citations: score the answers' "
              "citations against human-marked evidence (--rationales); questions: answers "
              "and abstentions against annotators' answer spans (SQuAD 2.0 layout).")
@click.option("--dataset", "dataset_dir", required=True, type=click.Path(path_type=Path),
              help="A BEIR dataset folder (corpus.jsonl, queries.jsonl, qrels/), or for "
              "--task questions a folder of corpus.jsonl and questions.jsonl.")
@click.option("--rationales", "rationales_file", type=click.Path(path_type=Path), default=None,
              help="With --task citations: the evidence sentences of the claims (.jsonl).")
@click.option("--retriever", "retrievers", default="bm25,dense,hybrid", show_default=True,
              help="Comma-separated retrievers to compare in one run.")
@click.option("--split", default=None,
              help="qrels split (default test; with --task citations, every claim of "
              "--rationales unless a split is named).")
@click.option("-k", "k", default=DEFAULT_K, show_default=True, type=click.IntRange(1, MAX_K),
              help="With --task citations: passages per question, as in `rag ask -k`.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N queries.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
              help="Also write the report to this file as JSON.")
@click.option("--plot", "plot_out", type=click.Path(path_type=Path), default=None,
              help="Draw the figure to this image file (needs the [plot] extra).")
@click.option("--cache", type=click.Path(path_type=Path), default=Path(".cache/eval"),
              show_default=True, help="Where per-dataset indexes are kept between runs.")
@click.option("--cv", "cv_dir", type=click.Path(path_type=Path, exists=True, file_okay=False),
              default=None, help="With --task questions: a folder of fold scorers made by "
              "`python -m eval.quality.train_evidence`; each question is asked with the one "
              "that was not fit on its article (cross-validated figures).")
@click.pass_context
@errors
def evaluate(ctx: click.Context, task: str, dataset_dir: Path, rationales_file: Path | None,
             retrievers: str, split: str | None, k: int, limit: int | None,
             json_out: Path | None, plot_out: Path | None, cache: Path,
             cv_dir: Path | None) -> None:
    """Benchmark on a dataset: retrieval (nDCG@10, recall, MRR, MAP, latency), citations
    (SciFact's sentence-level P/R/F1 against human-marked evidence) or questions (answers,
    abstentions and answer phrases against annotators' answers)."""
    from eval.extras import pyplot
    from eval.quality import beir, runner
    from eval.quality import citations as cite

    if plot_out is not None:
        pyplot()  # without the [plot] extra, fail before the evaluation rather than after
    if task == "questions":
        from eval.quality import questions, squad

        report = questions.evaluate(squad.load(dataset_dir), ctx.obj, cache, k, limit, cv_dir,
                                    progress=sys.stderr.isatty())
        table, plot = questions.table, questions.plot
    elif task == "citations":
        if rationales_file is None:
            raise click.BadParameter("--task citations needs the evidence file",
                                     param_hint="--rationales")
        # Rationales may cover a split without qrels of its own here: read the corpus
        # through any split the folder has.
        dataset = beir.load(dataset_dir, split or beir.any_split(dataset_dir))
        report = cite.evaluate(dataset, rationales_file, ctx.obj, cache, k,
                               split_filter=split is not None, limit=limit,
                               progress=sys.stderr.isatty())
        table, plot = cite.table, cite.plot
    else:
        names = [r.strip() for r in retrievers.split(",") if r.strip()]
        unknown = [n for n in names if n not in RETRIEVER_NAMES]
        if unknown or not names:
            raise click.BadParameter(f"unknown retriever(s) {unknown}: use "
                                     f"{', '.join(RETRIEVER_NAMES)}",
                                     param_hint="--retriever")
        dataset = beir.load(dataset_dir, split or "test")
        report = runner.evaluate(dataset, names, ctx.obj, cache, limit,  # type: ignore[arg-type]
                                 progress=sys.stderr.isatty())
        table, plot = runner.table, runner.plot
    click.echo(table(report))
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=2))
        click.echo(f"report: {json_out}")
    if plot_out is not None:
        plot(report, plot_out)
        click.echo(f"plot: {plot_out}")


@click.command("bench")
@click.option("--dataset", "dataset_dir", required=True, type=click.Path(path_type=Path),
              help="A BEIR dataset folder; its test queries are timed and scored.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
              help="Also write the report to this file as JSON.")
@click.option("--cache", type=click.Path(path_type=Path), default=Path(".cache/bench"),
              show_default=True, help="Work folder: txtai's virtualenv, indexes, raw results.")
@click.option("--no-http", is_flag=True, help="Skip the HTTP timings.")
@click.option("--no-txtai-default", is_flag=True, help="Skip txtai in its default configuration.")
@click.option("--commit", is_flag=True,
              help="Time writes instead: one-document commits into indexes of 15 chunks, the "
                   "dataset and a synthetic 1M, ingest with and without checkpoints, search "
                   "over 1, 8 and 32 segments, merges (eval/bench/commit.py).")
@click.option("--filters", is_flag=True,
              help="Time searches instead with and without a filter selecting 10% of the "
                   "documents (eval/bench/filtered.py).")
@click.pass_context
@errors
def bench(ctx: click.Context, dataset_dir: Path, json_out: Path | None, cache: Path,
          no_http: bool, no_txtai_default: bool, commit: bool, filters: bool) -> None:
    """Race this project against txtai: ingest, search latency, nDCG@10, memory."""
    if filters:
        from eval.bench import filtered

        report = filtered.run(dataset_dir, ctx.obj, cache.resolve() / "filtered",
                              Path(".cache/eval"), log=click.echo)
        click.echo(filtered.table(report))
    elif commit:
        from eval.bench import commit as writes

        report = writes.run(dataset_dir, ctx.obj, cache.resolve() / "commit",
                            Path(".cache/eval"), 1_000_000, 11, "fast", log=click.echo)
        click.echo(writes.table(report))
    else:
        from eval.extras import require

        require("httpx", "bench", "rag bench")  # the race times both servers over HTTP
        from eval.bench import txtai_race as runner
        from eval.quality import beir

        dataset = beir.load(dataset_dir, "test")
        report = runner.run(dataset, ctx.obj, cache.resolve(), http=not no_http,
                            txtai_default=not no_txtai_default)
        click.echo(runner.table(report))
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=2))
        click.echo(f"report: {json_out}")
