"""`rag collections`, `rag keys` and `rag meta`: what a team's admin runs on the server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from rag.cli_base import AS_JSON, collection_option, emit, errors, pipeline
from rag.collections import Collections
from rag.errors import CollectionNotFoundError
from rag.keys import ALL, ROLES, KeyStore


def _collections(ctx: click.Context) -> Collections:
    return Collections(Path(ctx.obj.index_dir), ctx.obj.request_lock_wait_s)


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help=AS_JSON)
@click.pass_context
@errors
def collections(ctx: click.Context, as_json: bool) -> None:
    """The collections of the index folder, with their documents and chunks."""
    if ctx.invoked_subcommand is not None:
        return
    found = _collections(ctx)
    listed = [{"name": n, **found.counts(n)} for n in found.names()]
    if as_json:
        emit({"collections": listed})
        return
    for c in listed:
        click.echo(f"{c['name']:24} {c['documents']:>7} documents {c['chunks']:>8} chunks")


@collections.command("create")
@click.argument("name")
@click.pass_context
@errors
def create_collection(ctx: click.Context, name: str) -> None:
    """Make the empty collection NAME (then: rag ingest --collection NAME PATH)."""
    from rag.pipelines import Pipelines

    Pipelines(pipeline(ctx)).create(name)
    click.echo(f"collection {name!r} created: rag ingest --collection {name} PATH")


@collections.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask first.")
@click.pass_context
@errors
def delete_collection(ctx: click.Context, name: str, yes: bool) -> None:
    """Delete the collection NAME and every document in it (atomic: all or nothing)."""
    found = _collections(ctx)
    if not found.exists(name):
        raise CollectionNotFoundError(name)
    if not yes:
        click.confirm(f"Delete collection {name!r} and its {found.counts(name)['documents']} "
                      "documents?", abort=True)
    found.delete(name, ctx.obj.request_lock_wait_s)
    click.echo(f"collection {name!r} deleted")


@click.group()
def keys() -> None:
    """API keys scoped to collections and a role (read, write, admin)."""


def _store(ctx: click.Context) -> KeyStore:
    return KeyStore(Path(ctx.obj.index_dir), ctx.obj.request_lock_wait_s)


@keys.command("create")
@click.option("--collection", "scope", required=True, metavar="NAME[,NAME...]",
              help="The collections the key may use ('*': every one, later ones too).")
@click.option("--role", type=click.Choice(list(ROLES)), required=True,
              help="read: search, ask, read documents; write: also upload and delete; "
                   "admin: also manage collections and keys.")
@click.option("--expires", default=None, metavar="DATE",
              help="2025-12-31 (stops working at 00:00 UTC that day) or an ISO 8601 time.")
@click.option("--label", default="", help="Who or what the key is for.")
@click.option("--json", "as_json", is_flag=True, help=AS_JSON)
@click.pass_context
@errors
def create_key(ctx: click.Context, scope: str, role: str, expires: str | None, label: str,
               as_json: bool) -> None:
    """Make a key and print it, this once: only its hash is kept."""
    names = [n.strip() for n in scope.split(",") if n.strip()]
    found = _collections(ctx)
    for name in names:
        if name != ALL and not found.exists(name):
            raise CollectionNotFoundError(name)
    key, record = _store(ctx).create(names, role, time.time(), expires, label)
    if as_json:
        emit({**record.public(time.time()), "key": key})
        return
    click.echo(key)
    click.echo(f"(key {record.id}: {record.role} on {', '.join(record.collections)}"
               + (f", expires {record.expires}" if record.expires else "")
               + "; shown this once, only its hash is stored)", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help=AS_JSON)
@click.pass_context
@errors
def list_keys(ctx: click.Context, as_json: bool) -> None:
    """Every key: id, role, collections, label, expiry, revocation (never the key)."""
    listed = _store(ctx).listed(time.time())
    if as_json:
        emit({"keys": listed})
        return
    for k in listed:
        state = "active" if k["active"] else ("revoked" if k["revoked"] else "expired")
        click.echo(f"{k['id']}  {k['role']:5}  {state:7}  {','.join(k['collections']):30}  "
                   f"expires {k['expires'] or 'never':20}  {k['label']}")


@keys.command("revoke")
@click.argument("key_id")
@click.pass_context
@errors
def revoke_key(ctx: click.Context, key_id: str) -> None:
    """Revoke KEY_ID: a running server refuses it from its next request."""
    record = _store(ctx).revoke(key_id, time.time())
    click.echo(f"key {record.id} revoked at {record.revoked}")


@click.command()
@click.argument("doc_id")
@click.argument("pairs", nargs=-1, metavar="KEY=VALUE...")
@click.option("--unset", multiple=True, metavar="KEY", help="Remove this key (repeat).")
@collection_option
@click.option("--json", "as_json", is_flag=True, help=AS_JSON)
@click.pass_context
@errors
def meta(ctx: click.Context, doc_id: str, pairs: tuple[str, ...], unset: tuple[str, ...],
         collection: str, as_json: bool) -> None:
    """Show or change DOC_ID's metadata (nothing is embedded again)."""
    from rag.metadata import full, parse_pairs

    p = pipeline(ctx, collection)
    if pairs or unset:
        p.update_metadata(doc_id, {**parse_pairs(pairs), **dict.fromkeys(unset)})
    doc = p.document(doc_id)
    shown = full(doc.title, doc.source, doc.metadata)
    if as_json:
        emit({"doc_id": doc_id, "metadata": shown})
        return
    for k, v in shown.items():
        click.echo(f"{k}: {json.dumps(v, ensure_ascii=False)}")
