"""The `rag` command: a thin layer that builds Settings, calls the Pipeline, prints. Its
commands are here (indexing and reading) and in rag/cli_serve.py (watch, serve, mcp),
rag/cli_eval.py (eval, bench) and rag/cli_admin.py (collections, keys, meta)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from rag import cli_admin, cli_eval, cli_serve
from rag.cli_base import (
    AS_JSON,
    collection_option,
    filter_options,
    no_ocr_option,
    use_ray,
    where_of,
)
from rag.cli_base import emit as _emit
from rag.cli_base import errors as _errors
from rag.cli_base import pipeline as _pipeline
from rag.config import ANSWER_MODES, DEFAULT_K, MAX_K, RETRIEVER_NAMES, load_settings
from rag.errors import RagError
from rag.quiet import quiet_libraries

RETRIEVERS = click.Choice(list(RETRIEVER_NAMES))
RETRIEVER = "How passages are found (default: $RAG_RETRIEVER)."


@click.group()
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None,
              help="Index folder (default: $RAG_INDEX_DIR or ./index).")
@click.option("--verbose", is_flag=True,
              help="Also show the libraries' own progress bars, warnings and logs.")
@click.pass_context
def main(ctx: click.Context, index_dir: Path | None, verbose: bool) -> None:
    """Ask questions of your documents; every answer sentence cites its source."""
    if not verbose:
        quiet_libraries()
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
@no_ocr_option
@click.option("--meta", "meta", multiple=True, metavar="KEY=VALUE",
              help="Metadata of every file ingested (team=legal; repeat for more); a file's "
                   "sidecar NAME.meta.json wins for it.")
@collection_option
@click.option("--json", "as_json", is_flag=True, help=AS_JSON)
@click.pass_context
@_errors
def ingest(ctx: click.Context, paths: tuple[Path, ...], prune: bool, ray_address: str | None,
           strict: bool, meta: tuple[str, ...], collection: str,
           as_json: bool) -> None:
    """Index files and folders (the formats: the documentation's Formats page); unchanged
    files are skipped."""
    from rag.metadata import parse_pairs

    use_ray(ctx, ray_address, None)
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
    if report.ocr_pages:
        click.echo(f"{'OCR':>9}: {report.ocr_pages} page(s) read from images")
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
@click.option("--json", "as_json", is_flag=True, help=AS_JSON)
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
@click.option("-k", "k", default=DEFAULT_K, show_default=True, type=click.IntRange(1, MAX_K),
              help="Passages to return.")
@click.option("--retriever", type=RETRIEVERS, default=None, help=RETRIEVER)
@collection_option
@filter_options
@click.option("--json", "as_json", is_flag=True, help=AS_JSON)
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
@click.option("-k", "k", default=DEFAULT_K, show_default=True, type=click.IntRange(1, MAX_K),
              help="Passages the answer is drawn from.")
@click.option("--retriever", type=RETRIEVERS, default=None, help=RETRIEVER)
@click.option("--mode", type=click.Choice(list(ANSWER_MODES)), default=None,
              help="extractive (quotes), or generative (an LLM writes, every sentence checked); "
                   "default: generative when RAG_LLM_BASE_URL is set.")
@click.option("--stream", is_flag=True, help="Print each verified sentence as it is ready.")
@collection_option
@filter_options
@click.option("--json", "as_json", is_flag=True, help=AS_JSON)
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
    label = locator.label() if locator is not None else ""
    return f"{doc_id}, {label}" if label else doc_id


def _explain(answer: Any) -> None:
    scores = {s.n: s.probability for s in answer.provenance.sentence_scores}
    span = answer.answer_span
    if span is not None:
        click.echo("\nAnswer: " + click.style(span.text, bold=True) + " [1]")
    for c in answer.citations:
        strength = f", evidence {scores[c.n]:.2f}" if c.n in scores else ""
        click.echo(f"\n[{c.n}] {c.title} ({_where(c.doc_id, c.locator)}, chars "
                   f"{c.char_start}-{c.char_end}{strength})")
        quote = c.quote
        if span is not None and c.n == 1:
            a, b = span.char_start - c.char_start, span.char_end - c.char_start
            quote = quote[:a] + click.style(quote[a:b], bold=True, underline=True) + quote[b:]
        click.echo(f"    \u201c{quote}\u201d")
    g = answer.provenance.generation
    if g is not None and g.fallback:
        click.echo(f"\n({g.fallback})")
    if g is not None and g.rejected:
        click.echo(f"\n{len(g.rejected)} generated sentence(s) left out as unverified "
                   "(see --json provenance.generation.rejected).")


@main.command()
@collection_option
@click.option("--json", "as_json", is_flag=True, help=AS_JSON)
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
@click.option("--json", "as_json", is_flag=True, help=AS_JSON)
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


# The commands of the other modules, in the order `rag --help` and the docs list them.
for _command in (cli_serve.watch, cli_serve.serve, cli_serve.mcp, cli_eval.evaluate,
                 cli_eval.bench, cli_admin.collections, cli_admin.keys, cli_admin.meta):
    main.add_command(_command)
