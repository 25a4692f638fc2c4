"""The commands of docs/getting-started.md and README.md, run as written and in order, in a
fresh folder (a fresh index): each `sh` line through bash with this environment's `rag` on
the PATH, each `python` block with this interpreter. `make run` runs the Makefile's own
recipe; its `rag serve`, like any other, starts a real server on a free port, whose address
then replaces 127.0.0.1:8000 in the commands that follow. `make test` is this suite."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eval.harness import Server, serve_rag
from tests.formats_corpus import pdf_bytes
from tests.seed_facts import ROOT, SEEDS

PAGES = [ROOT / "docs" / "getting-started.md", ROOT / "README.md"]
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
SHOWN = "127.0.0.1:8000"  # the address the pages name: `make run`'s
BIN = Path(sys.executable).parent
TIMEOUT_S = 300


def blocks(page: Path) -> list[tuple[str, str]]:
    """The page's `sh` and `python` code blocks, in order."""
    return [(m[1], m[2]) for m in BLOCK.finditer(page.read_text()) if m[1] in ("sh", "python")]


def lines(script: str) -> list[str]:
    """Shell command lines, continuations joined, blank lines and comments left out."""
    joined = re.sub(r"\\\n\s*", " ", script)
    return [line.strip() for line in joined.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def recipe(target: str) -> list[str]:
    """A Makefile target's recipe lines, with the venv's tools named as on the PATH here."""
    text = (ROOT / "Makefile").read_text()
    found = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", text, re.M)
    assert found, f"the pages run `make {target}`, which the Makefile lacks"
    return [line.strip().replace("$(BIN)/", "") for line in found[1].splitlines()]


class Reader:
    """What a reader following the pages has: a folder, a shell, a server once started."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.server: Server | None = None
        self.ran: list[str] = []

    @property
    def base(self) -> str:
        return self.server.base_url.removeprefix("http://") if self.server else SHOWN

    def sh(self, command: str) -> str:
        words = shlex.split(command, comments=True)
        if words[0] == "make":
            if words[1] == "run":
                return "\n".join(self.sh(line) for line in recipe("run"))
            recipe(words[1])  # `make test` is this suite; the target must exist
            return ""
        if words[:2] == ["rag", "serve"]:
            self.serve(words[2:])
            return ""
        done = subprocess.run(["bash", "-c", command.replace(SHOWN, self.base)],
                              cwd=self.folder, env=self.env, capture_output=True, text=True,
                              timeout=TIMEOUT_S)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        self.ran.append(command)
        return done.stdout

    def serve(self, args: list[str]) -> None:
        """`rag serve ARGS` on a free port; a server already running stays the one used (a
        second on the same port would not start)."""
        if self.server is None:
            kept = [a for i, a in enumerate(args) if a not in ("--host", "--port")
                    and (i == 0 or args[i - 1] not in ("--host", "--port"))]
            # the harness starts it from here, not from the reader's folder: name its ./index
            env = {**self.env, "RAG_INDEX_DIR": str(self.folder / "index")}
            self.server = serve_rag(env, *kept, wait=TIMEOUT_S)
        self.ran.append("rag serve")

    def python(self, code: str) -> str:
        done = subprocess.run([sys.executable, "-c", code.replace(SHOWN, self.base)],
                              cwd=self.folder, env=self.env, capture_output=True, text=True,
                              timeout=TIMEOUT_S)
        assert done.returncode == 0, f"{code}\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        self.ran.append("python")
        return done.stdout


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reader]:
    folder = tmp_path_factory.mktemp("reader")
    (folder / "seeds").symlink_to(SEEDS)
    (folder / "notes.pdf").write_bytes(pdf_bytes(
        [["Field notes", "The Lindenfeld bicycle scheme opened in May 2019 with 400 bicycles."]],
        title="Field notes"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", HF_HUB_OFFLINE="1")
    person = Reader(folder, env)
    try:
        yield person
    finally:
        if person.server is not None:
            person.server.stop()


def _check(command: str, output: str) -> None:
    """What each kind of command must show besides its exit status."""
    if command.startswith("curl"):
        body = json.loads(output)
        assert not {"detail", "error"} & set(body), f"{command} answered {output[:500]}"
    if command.startswith("rag ask") and "World Cup" not in command:
        assert "[1]" in output, output


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_on_the_page_runs(reader: Reader, page: Path) -> None:
    found = blocks(page)
    assert found, f"{page.name} has no commands"
    for language, body in found:
        if language == "python":
            reader.python(body)
            continue
        for command in lines(body):
            _check(command, reader.sh(command))
    assert (reader.folder / "index" / "CURRENT").exists()  # the pages made the index here


@pytest.mark.unit
def test_the_readme_stays_short_and_links_only_to_pages_that_exist() -> None:
    """Issue 30: at most 250 lines; the rest lives in docs/, where the strict build checks
    links (this checks the README's own)."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    for target in re.findall(r"\]\(((?:docs/|[A-Z]+\.md)[^)#]*)", text):
        assert (ROOT / target).exists(), target
