"""The CLI reference: every command of the click tree under ``rag`` (groups recursively), its
usage line, help text, arguments and options, read from the commands themselves."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import click

from eval.docsite.markdown import code, fenced, table


def walk(command: click.Command, ctx: click.Context) -> Iterator[tuple[click.Command,
                                                                       click.Context]]:
    """``command`` and every command under it, depth first, in the order they were added."""
    yield command, ctx
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            if not sub.hidden:
                yield from walk(sub, click.Context(sub, info_name=name, parent=ctx))


def anchor(ctx: click.Context) -> str:
    return re.sub(r"[^a-z0-9]+", "-", ctx.command_path.lower()).strip("-")


def help_text(command: click.Command) -> str:
    """The help click prints, without its formatting marks (``\\b``, and after ``\\f``)."""
    text = inspect.cleandoc((command.help or "").split("\f")[0])
    return "\n".join(line for line in text.splitlines() if line.strip() != "\b").strip()


def type_text(param: click.Parameter) -> str:
    kind = param.type
    if isinstance(param, click.Option) and param.is_flag:
        return "flag"
    if isinstance(kind, click.Choice):
        return "one of " + ", ".join(code(c) for c in kind.choices)
    if isinstance(kind, click.IntRange):
        low = "" if kind.min is None else f"{kind.min}"
        high = "" if kind.max is None else f"{kind.max}"
        return f"integer {low}–{high}" if low and high else f"integer ≥ {low}" if low \
            else f"integer ≤ {high}"
    names = {"integer": "integer", "float": "number", "text": "text", "path": "path",
             "boolean": "boolean", "file": "file"}
    return names.get(kind.name, kind.name)


def default_text(param: click.Parameter) -> str:
    if (isinstance(param, click.Option) and param.is_flag) or param.required:
        return ""
    value = param.default
    if value is None or callable(value):
        return ""
    return code(value) if isinstance(value, (str, int, float, Path)) else code(repr(value))


def params_table(command: click.Command, ctx: click.Context) -> str:
    rows = []
    helper = command.get_help_option(ctx)  # the same --help on every command
    for param in command.get_params(ctx):
        if isinstance(param, click.Argument):
            name = code(param.make_metavar(ctx))
            what = "required" if param.required else "optional"
            if param.nargs == -1:
                what += ", one or more" if param.required else ", any number"
            rows.append((name, type_text(param), "", f"argument ({what})"))
        elif isinstance(param, click.Option) and not param.hidden and param is not helper:
            names = ", ".join(code(o) for o in [*param.opts, *param.secondary_opts])
            # the type column names choices and ranges; other values get their placeholder
            plain = param.is_flag or isinstance(param.type, (click.Choice, click.IntRange))
            metavar = "" if plain else param.make_metavar(ctx)
            rows.append((names + (f" {code(metavar)}" if metavar else ""), type_text(param),
                         default_text(param), param.help or ""))
    return table(["Argument or option", "Type", "Default", "What it does"], rows)


def render(root: click.Command, prog: str) -> str:
    """One section a command: its usage, help and parameters."""
    sections = []
    for command, ctx in walk(root, click.Context(root, info_name=prog)):
        usage = " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])
        sections += [f"## {code(ctx.command_path)} {{#{anchor(ctx)}}}", fenced(usage, "sh"),
                     help_text(command), params_table(command, ctx)]
    return "\n\n".join(sections)
