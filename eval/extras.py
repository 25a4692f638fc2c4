"""Optional dependencies: `rag eval --plot` needs the [plot] extra, `rag bench` the [bench] one.

A plain install answers questions without them; a command that needs one fails
before it starts its work, with a message naming the pip extra that brings it.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from rag.errors import RagError


class MissingExtraError(RagError):
    """An optional feature's dependency is not installed; the message names its extra."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """``module`` imported, or MissingExtraError saying which extra ``feature`` needs."""
    try:
        return import_module(module)
    except ImportError:
        raise MissingExtraError(f"{feature} needs {module}: "
                                f"pip install 'rag-cited[{extra}]'") from None


def pyplot() -> ModuleType:
    """matplotlib.pyplot drawing to files only (the Agg backend, no display needed)."""
    require("matplotlib", "plot", "--plot").use("Agg")
    return import_module("matplotlib.pyplot")
