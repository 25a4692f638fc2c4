"""`rag watch`, `rag serve` and `rag mcp`: the commands that keep running."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from types import FrameType

import click

from rag.cli_base import collection_option, errors, no_ocr_option, pipeline, use_ray
from rag.collections import DEFAULT, Collections, check_name
from rag.config import Settings
from rag.errors import CollectionNotFoundError


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _exists(settings: Settings, name: str) -> None:
    """A named collection to sync into must have been made (`rag collections create`)."""
    if not Collections(Path(settings.index_dir)).exists(check_name(name)):
        raise CollectionNotFoundError(name)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@no_ocr_option
@collection_option
@click.pass_context
@errors
def watch(ctx: click.Context, paths: tuple[Path, ...], collection: str) -> None:
    """Keep the collection equal to these folders: ingest them now, then again after each
    burst of changes (added, changed, deleted files); Ctrl-C or SIGTERM stops. A `rag serve`
    on the same index picks up each snapshot."""
    from rag.sync import Syncer, SyncRun

    _exists(ctx.obj, collection)
    synced = pipeline(ctx, collection)

    def told(run: SyncRun) -> None:
        what = (f"error: {run.error}" if run.error else
                f"{run.added} added, {run.replaced} replaced, {run.deleted} deleted, "
                f"{run.failed} failed" + (f", snapshot {run.snapshot}" if run.snapshot
                                          else ", index unchanged"))
        click.echo(f"[{run.started}] {run.trigger} ({run.changed_files} change(s)): {what} "
                   f"in {run.seconds:.2f}s", err=run.error is not None)

    # The whole index root (every collection's folder) is never watched.
    syncer = Syncer(paths, lambda p: synced.ingest(p, prune=True), ctx.obj.sync_quiet_ms,
                    ignore=Path(ctx.obj.index_dir), on_run=told)
    into = "" if collection == DEFAULT else f" into collection {collection!r}"
    click.echo(f"watching {', '.join(map(str, syncer.paths))}{into} (Ctrl-C stops)")
    # A service manager's stop (systemd, docker stop: SIGTERM) ends it as Ctrl-C does, with
    # the merges awaited; so does a stop of one started where Ctrl-C is ignored (`... &`).
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        syncer.watch()
    with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C leaves a merge undone (safe)
        synced.wait_for_merges()
    for path, reason in syncer.status()["failed"]:
        click.echo(f"  not indexed: {path}: {reason}")


@click.command()
@click.option("--host", default=None, help="Bind address (default $RAG_HOST or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default $RAG_PORT or 8000).")
@click.option("--ray", "ray_address", default=None, metavar="ADDRESS",
              help="Hold the vectors in shards on this Ray cluster (default $RAG_RAY_ADDRESS).")
@click.option("--shards", default=None, type=click.IntRange(1, 1024),
              help="Number of shards with --ray (default $RAG_RAY_SHARDS or 2).")
@click.option("--watch", "watch_paths", multiple=True, type=click.Path(path_type=Path),
              help="Keep a collection equal to this folder while serving (repeatable; "
                   "GET /v1/sync shows its state).")
@click.option("--watch-collection", default=None, metavar="NAME",
              help="The collection --watch keeps (default $RAG_WATCH_COLLECTION or default); "
                   "it must exist.")
@click.option("--root-path", default=None, metavar="PREFIX",
              help="The path prefix a reverse proxy serves this under, having stripped it "
                   "(/rag; default: the path of $RAG_PUBLIC_URL).")
@click.pass_context
@errors
def serve(ctx: click.Context, host: str | None, port: int | None, ray_address: str | None,
          shards: int | None, watch_paths: tuple[Path, ...], watch_collection: str | None,
          root_path: str | None) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    from api.app import create_app
    from api.security import root_path as proxy_prefix

    use_ray(ctx, ray_address, shards)
    settings: Settings = ctx.obj
    if port is not None:  # the port links in answers name (api.security.public_url)
        settings = settings.model_copy(update={"port": port})
    if watch_paths:
        settings = settings.model_copy(update={"watch": list(watch_paths)})
    if watch_collection is not None:
        settings = settings.model_copy(update={"watch_collection": check_name(watch_collection)})
    if settings.watch:
        _exists(settings, settings.watch_collection)
    host = host or settings.host
    prefix = proxy_prefix(settings) if root_path is None else root_path.rstrip("/")
    uvicorn.run(create_app(settings, hosts=[host]), host=host, port=settings.port,
                root_path=prefix, log_level="info")


@click.command("mcp")
@click.pass_context
def mcp(ctx: click.Context) -> None:
    """Serve the tools (search, ask, get_document, list_documents, list_collections) to an
    MCP client over stdio, for desktop agents; only protocol goes to stdout, logs to stderr."""
    from api.mcp import run_stdio

    run_stdio(ctx.obj)
