"""What the `rag` commands share: errors as one line, JSON output, the pipeline of the
collection a command names, a Ray cluster's options, and the filter options of search and
ask."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, TypeVar, cast

import click

from rag import filters
from rag.collections import DEFAULT
from rag.errors import InputError, RagError
from rag.terms import terms

F = TypeVar("F", bound=Callable[..., Any])
AS_JSON = "Print the result as JSON instead of text."


def errors(func: F) -> F:
    """Turn library errors into one line on stderr and exit status 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RagError as exc:
            raise click.ClickException(str(exc)) from None

    return cast(F, wrapper)


def pipeline(ctx: click.Context, collection: str = DEFAULT) -> Any:
    from rag.pipeline import Pipeline

    return Pipeline(ctx.obj, collection=collection)


def emit(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def use_ray(ctx: click.Context, address: str | None, shards: int | None) -> None:
    """``--ray ADDRESS`` and ``--shards N`` over the settings' RAG_RAY_*."""
    update: dict[str, Any] = {}
    if address is not None:
        update["ray_address"] = address
    if shards is not None:
        update["ray_shards"] = shards
    if update:
        ctx.obj = ctx.obj.model_copy(update=update)


def _ocr_off(ctx: click.Context, _: click.Parameter, off: bool) -> None:
    if off:
        ctx.obj = ctx.obj.model_copy(update={"ocr": False})


def no_ocr_option(func: F) -> F:
    """``--no-ocr``: the command's settings with OCR off, as RAG_OCR=off."""
    return click.option("--no-ocr", is_flag=True, expose_value=False, callback=_ocr_off,
                        help="Do not read scanned pages and images with OCR "
                             "(as RAG_OCR=off).")(func)


def collection_option(func: F) -> F:
    return click.option("--collection", default=DEFAULT, show_default=True, metavar="NAME",
                        help="The collection to use (`rag collections` lists them).")(func)


def filter_options(func: F) -> F:
    """--where, --doc, --path and --filter: all given must hold (the docs: Collections and
    keys, Filters)."""
    options = [
        click.option("--where", "where", multiple=True, metavar="TERM",
                      help="A metadata condition: team=legal, year>=2020, format=pdf|docx, "
                           "team!=hr (repeat: all must hold)."),
        click.option("--doc", "docs", multiple=True, metavar="DOC_ID",
                     help="Only this document (repeat for several)."),
        click.option("--path", "path", default=None, metavar="PREFIX",
                     help="Only documents whose source starts so (reports/2024/)."),
        click.option("--filter", "filter_json", default=None, metavar="JSON",
                     help='A filter object: {"or": [{"field": "team", "eq": "legal"}, ...]}.'),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def where_of(where: Sequence[str], docs: Sequence[str], path: str | None,
             filter_json: str | None) -> filters.Filter | None:
    """The filter the options give (None: none)."""
    parts: list[filters.Filter] = []
    if where:
        parts.append(filters.parse(terms(list(where)), "--where"))
    if docs:
        parts.append(filters.parse({"doc_id": list(docs)}, "--doc"))
    if path:
        parts.append(filters.parse({"path": path}, "--path"))
    if filter_json:
        try:
            parts.append(filters.parse(json.loads(filter_json), "--filter"))
        except ValueError as exc:
            raise InputError(f"--filter: not JSON ({exc})") from None
    return filters.combine(*parts)
