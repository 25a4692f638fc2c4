"""The `rag` command: a thin layer that builds Settings, calls the Pipeline, prints."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from rag import cli_admin
from rag.cli_base import collection_option, filter_options, where_of
from rag.cli_base import emit as _emit
from rag.cli_base import errors as _errors
from rag.cli_base import pipeline as _pipeline
from rag.config import ANSWER_MODES, DEFAULT_K, MAX_K, RETRIEVER_NAMES, Settings, load_settings
from rag.errors import RagError

RETRIEVERS = click.Choice(list(RETRIEVER_NAMES))


def _use_ray(ctx: click.Context, address: str | None, shards: int | None) -> None:
    update: dict[str, Any] = {}
    if address is not None:
        update["ray_address"] = address
    if shards is not None:
        update["ray_shards"] = shards
    if update:
        ctx.obj = ctx.obj.model_copy(update=update)


@click.group()
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None,
              help="Index folder (default: $RAG_INDEX_DIR or ./index).")
@click.pass_context
def main(ctx: click.Context, index_dir: Path | None) -> None:
    """Ask questions of your documents; every answer sentence cites its source."""
    try:
        settings = load_settings()
    except RagError as exc:
        raise click.ClickException(str(exc)) from None
    if index_dir is not None:
        settings = settings.model_copy(update={"index_dir": index_dir})
    ctx.obj = settings


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--prune", is_flag=True, help="Delete documents whose files left these folders.")
@click.option("--ray", "ray_address", default=None, metavar="ADDRESS",
              help="Embed on this Ray cluster's actors (default $RAG_RAY_ADDRESS; needs .[ray]).")
@click.option("--strict", is_flag=True,
              help="Any file in a folder that cannot be read stops the ingest (exit 1, "
                   "nothing changed); without it such files are skipped and listed.")
@click.option("--meta", "meta", multiple=True, metavar="KEY=VALUE",
              help="Metadata of every file ingested (team=legal; repeat for more); a file's "
                   "sidecar NAME.meta.json wins for it.")
@collection_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_errors
def ingest(ctx: click.Context, paths: tuple[Path, ...], prune: bool, ray_address: str | None,
           strict: bool, meta: tuple[str, ...], collection: str, as_json: bool) -> None:
    """Index files and folders (see README for the formats); unchanged files are skipped."""
    from rag.metadata import parse_pairs

    _use_ray(ctx, ray_address, None)
    given = parse_pairs(meta)
    pipeline = _pipeline(ctx, collection)
    report = pipeline.ingest(paths, prune=prune, progress=sys.stderr.isatty(), strict=strict,
                             metadata=given)
    pipeline.wait_for_merges()
    if as_json:
        _emit(report.as_dict())
        return
    for label, items in (("added", report.added), ("replaced", report.replaced),
                         ("skipped", report.skipped), ("deleted", report.deleted)):
        click.echo(f"{label:>9}: {len(items)}" + (f"  ({', '.join(items)})" if items else ""))
    click.echo(f"{'failed':>9}: {len(report.failed)}")
    for path, reason in report.failed:
        click.echo(f"           {path}: {reason}")
    reused = f" ({report.reused} kept their vectors)" if report.reused else ""
    click.echo(f"   chunks: {report.chunks} written{reused} in {report.seconds:.2f}s"
               + (f", snapshot {report.snapshot}" if report.snapshot else ", index unchanged"))


@main.command()
@click.option("--max-segments", type=click.IntRange(1), default=None,
              help="Merge until at most this many segments remain, none holding deleted "
                   "documents (default: only the merges the tiered policy asks for).")
@collection_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_errors
def compact(ctx: click.Context, max_segments: int | None, collection: str,
            as_json: bool) -> None:
    """Merge the index's segments now (writes and searches go on meanwhile)."""
    pipeline = _pipeline(ctx, collection)
    reports = pipeline.compact(max_segments)
    segments = len(pipeline.segments())
    if as_json:
        _emit({"merges": [{"merged": list(r.merged), "into": r.into, "chunks": r.chunks,
                           "seconds": round(r.seconds, 3), "snapshot": r.snapshot}
                          for r in reports], "segments": segments})
        return
    for r in reports:
        click.echo(f"merged {len(r.merged)} segments into {r.into} ({r.chunks} chunks) in "
                   f"{r.seconds:.2f}s")
    click.echo(f"{segments} segment(s)" + ("" if reports else ", nothing to merge"))


@main.command()
@click.argument("query")
@click.option("-k", "k", default=DEFAULT_K, show_default=True, type=click.IntRange(1, MAX_K))
@click.option("--retriever", type=RETRIEVERS, default=None)
@collection_option
@filter_options
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_errors
def search(ctx: click.Context, query: str, k: int, retriever: str | None, collection: str,
           where: tuple[str, ...], docs: tuple[str, ...], path: str | None,
           filter_json: str | None, as_json: bool) -> None:
    """Ranked passages for QUERY."""
    chosen = where_of(where, docs, path, filter_json)
    hits = _pipeline(ctx, collection).search(query, k, retriever, chosen)
    if as_json:
        _emit({"query": query, "hits": [h.as_dict() for h in hits]})
        return
    for h in hits:
        c = h.chunk
        click.echo(f"{h.rank}. [{h.score:.3f}] {h.title} ({_where(c.doc_id, h.locator)}, chars "
                   f"{c.char_start}-{c.char_end})")
        click.echo("   " + " ".join(c.text.split())[:400])


@main.command()
@click.argument("question")
@click.option("-k", "k", default=DEFAULT_K, show_default=True, type=click.IntRange(1, MAX_K))
@click.option("--retriever", type=RETRIEVERS, default=None)
@click.option("--mode", type=click.Choice(list(ANSWER_MODES)), default=None,
              help="extractive (quotes), or generative (an LLM writes, every sentence checked); "
                   "default: generative when RAG_LLM_BASE_URL is set.")
@click.option("--stream", is_flag=True, help="Print each verified sentence as it is ready.")
@collection_option
@filter_options
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_errors
def ask(ctx: click.Context, question: str, k: int, retriever: str | None, mode: str | None,
        stream: bool, collection: str, where: tuple[str, ...], docs: tuple[str, ...],
        path: str | None, filter_json: str | None, as_json: bool) -> None:
    """A short answer to QUESTION whose every sentence cites a verified quote, or an abstention."""
    from rag.types import Answer

    answer = None
    chosen = where_of(where, docs, path, filter_json)
    for event in _pipeline(ctx, collection).ask_stream(question, k, retriever, mode, chosen):
        if isinstance(event, Answer):
            answer = event
        elif stream and not as_json:
            click.echo(event.text)
    assert answer is not None
    if as_json:
        _emit(answer.as_dict())
        return
    if not stream:
        click.echo(answer.text)
    _explain(answer)


def _where(doc_id: str, locator: Any) -> str:
    """"report, p. 12": the document and where in the original file, when known."""
    return f"{doc_id}, {locator.label()}" if locator is not None else doc_id


def _explain(answer: Any) -> None:
    scores = {s.n: s.probability for s in answer.provenance.sentence_scores}
    for c in answer.citations:
        strength = f", evidence {scores[c.n]:.2f}" if c.n in scores else ""
        click.echo(f"\n[{c.n}] {c.title} ({_where(c.doc_id, c.locator)}, chars "
                   f"{c.char_start}-{c.char_end}{strength})")
        click.echo(f"    \u201c{c.quote}\u201d")
    g = answer.provenance.generation
    if g is not None and g.fallback:
        click.echo(f"\n({g.fallback})")
    if g is not None and g.rejected:
        click.echo(f"\n{len(g.rejected)} generated sentence(s) left out as unverified "
                   "(see --json provenance.generation.rejected).")


@main.command()
@collection_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_errors
def docs(ctx: click.Context, collection: str, as_json: bool) -> None:
    """The indexed documents; --json adds each file's path on this machine (where it was
    ingested from), which the API never shows, and every document's metadata."""
    documents = _pipeline(ctx, collection).documents(with_paths=True)
    if as_json:
        _emit({"documents": documents})
        return
    for d in documents:
        click.echo(f"{d['doc_id']}  {d['chunks']:>4} chunks  {d['chars']:>8} chars  {d['title']}")


@main.command()
@click.argument("doc_id")
@collection_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_errors
def show(ctx: click.Context, doc_id: str, collection: str, as_json: bool) -> None:
    """The stored text of DOC_ID (what every citation offset points into)."""
    from rag.metadata import full

    doc = _pipeline(ctx, collection).document(doc_id)
    if as_json:
        _emit({"doc_id": doc.doc_id, "title": doc.title, "source": doc.source, "text": doc.text,
               "metadata": full(doc.title, doc.source, doc.metadata)})
        return
    click.echo(f"# {doc.title}\n# {doc.source}\n")
    click.echo(doc.text)


@main.command()
@click.option("--host", default=None, help="Bind address (default $RAG_HOST or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default $RAG_PORT or 8000).")
@click.option("--ray", "ray_address", default=None, metavar="ADDRESS",
              help="Hold the vectors in shards on this Ray cluster (default $RAG_RAY_ADDRESS).")
@click.option("--shards", default=None, type=click.IntRange(1, 1024),
              help="Number of shards with --ray (default $RAG_RAY_SHARDS or 2).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, ray_address: str | None,
          shards: int | None) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    from api.app import create_app

    _use_ray(ctx, ray_address, shards)
    settings: Settings = ctx.obj
    if port is not None:  # the port links in answers name (api.security.public_url)
        settings = settings.model_copy(update={"port": port})
    host = host or settings.host
    uvicorn.run(create_app(settings, hosts=[host]), host=host, port=settings.port,
                log_level="info")


@main.command("mcp")
@click.pass_context
def mcp(ctx: click.Context) -> None:
    """Serve the tools (search, ask, get_document, list_documents) to an MCP client over
    stdio, for desktop agents; only protocol goes to stdout, logs to stderr."""
    from api.mcp import run_stdio

    run_stdio(ctx.obj)


@main.command("eval")
@click.option("--task", type=click.Choice(["retrieval", "citations"]), default="retrieval",
              show_default=True, help="retrieval: rank documents (qrels); citations: score "
              "the answers' citations against human-marked evidence (--rationales).")
@click.option("--dataset", "dataset_dir", required=True, type=click.Path(path_type=Path),
              help="A BEIR dataset folder (corpus.jsonl, queries.jsonl, qrels/).")
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
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None)
@click.option("--plot", "plot_out", type=click.Path(path_type=Path), default=None)
@click.option("--cache", type=click.Path(path_type=Path), default=Path(".cache/eval"),
              show_default=True, help="Where per-dataset indexes are kept between runs.")
@click.pass_context
@_errors
def evaluate(ctx: click.Context, task: str, dataset_dir: Path, rationales_file: Path | None,
             retrievers: str, split: str | None, k: int, limit: int | None,
             json_out: Path | None, plot_out: Path | None, cache: Path) -> None:
    """Benchmark on a BEIR dataset: retrieval (nDCG@10, recall, MRR, MAP, latency) or
    citations (SciFact's sentence-level P/R/F1 against human-marked evidence)."""
    from eval.extras import pyplot
    from eval.quality import beir, runner
    from eval.quality import citations as cite

    if plot_out is not None:
        pyplot()  # without the [plot] extra, fail before the evaluation rather than after
    if task == "citations":
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


@main.command("bench")
@click.option("--dataset", "dataset_dir", required=True, type=click.Path(path_type=Path),
              help="A BEIR dataset folder; its test queries are timed and scored.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None)
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
@_errors
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


for _command in (cli_admin.collections, cli_admin.keys, cli_admin.meta):
    main.add_command(_command)
