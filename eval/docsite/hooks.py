"""The MkDocs hook (mkdocs.yml, ``hooks:``) that puts the generated parts into the pages.

A page asks for a generated part with an HTML comment, which renders as nothing should the
hook be missing, and for a value from the code with double braces:

    <!-- generated: settings -->        the Settings table (settings_page)
    <!-- generated: cli -->             every command of `rag` (cli_page)
    <!-- generated: http-api -->        routes, models and a real server's examples (api_page)
    <!-- generated: http-other -->      the routes OpenAPI leaves out
    {{ RAG_MAX_BODY_BYTES }}            a setting's default, as the Settings page shows it
    {{ rag.tables.MAX_SHEET_CELLS }}   a constant of the library

An unknown name stops the build, so a page cannot quote a setting or constant that is gone.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

from eval.docsite import api_page, cli_page, settings_page
from eval.docsite.markdown import code

PART = re.compile(r"<!--\s*generated:\s*([\w-]+)\s*-->")
VALUE = re.compile(r"\{\{\s*(RAG_[A-Z0-9_]+|rag\.[\w.]+)\s*\}\}")
EXAMPLES = "api-examples.json"


@cache
def _app() -> Any:
    from api.app import create_app
    from rag.config import Settings

    # The defaults, not this shell's RAG_* variables: the same pages on every machine.
    return create_app(Settings.model_construct())


def _examples(docs_dir: str) -> list[dict[str, Any]]:
    path = Path(docs_dir) / EXAMPLES
    if not path.exists():
        raise PluginError(f"{path} is missing: run `python -m eval.docsite.examples`")
    examples: list[dict[str, Any]] = json.loads(path.read_text())["examples"]
    return examples


def _parts(config: MkDocsConfig) -> dict[str, Callable[[], str]]:
    from rag.cli import main
    from rag.config import Settings

    return {
        "settings": lambda: settings_page.render(Settings),
        "cli": lambda: cli_page.render(main, "rag"),
        "http-api": lambda: api_page.render(_app().openapi(), _examples(config.docs_dir)),
        "http-other": lambda: api_page.render_other(_app()),
    }


def value(name: str) -> str:
    """``RAG_X``: the setting's default; ``rag.module.NAME``: the constant, readable."""
    from rag.config import Settings

    if name.startswith("RAG_"):
        for entry in settings_page.entries(Settings):
            if entry.variable == name:
                return entry.default
        raise PluginError(f"no setting {name} in rag.config.Settings")
    module, _, attr = name.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        raise PluginError(f"no {name} to quote: the docs name a constant the code lacks") \
            from None
    if isinstance(found, (set, frozenset, list, tuple)):
        return ", ".join(code(v) for v in sorted(found))
    if isinstance(found, int) and not isinstance(found, bool):
        return f"{found:,}"
    return str(found)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    parts = _parts(config)

    def part(match: re.Match[str]) -> str:
        if match[1] not in parts:
            raise PluginError(f"{page.file.src_path}: no generated part {match[1]!r} "
                              f"(there are {', '.join(parts)})")
        return parts[match[1]]()

    return PART.sub(part, VALUE.sub(lambda m: value(m[1]), markdown))
