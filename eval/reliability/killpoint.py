"""Run a `rag` command that SIGKILLs itself at a chosen call, for crash-safety trials.

    python -m eval.reliability.killpoint --at rag.writer.IndexWriter.commit --nth 1 \
        --phases PHASEFILE -- ingest docs/ --prune

A profile hook (sys.setprofile and threading.setprofile, so `rag serve`'s worker
threads are covered too) counts calls to the target, a Python function or a C
builtin such as ``os.replace``, and kills the process with SIGKILL on the nth one:
no handler, no flush, no cleanup runs, as in a power cut of the process. With
--phases the hook also writes which stage the command is in (reading, chunking,
embedding, writing, merging, commit, swap, cleanup) so a kill from outside at a random
moment can be attributed to a stage.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

# Stage entered when each of these is called; the last one entered is where a kill lands.
PHASES = {
    "rag.sync.Syncer.run": "reading",
    "rag.pipeline.Pipeline.ingest": "reading",
    "rag.pipeline.Pipeline.upload": "reading",
    "rag.pipeline.Pipeline.delete": "writing",
    "rag.isolation.parse": "reading",
    "rag.chunking.Chunker.chunk": "chunking",
    "rag.onnx_encoder.OnnxEncoder._run": "embedding",
    "rag.writer.IndexWriter._open": "writing",
    "rag.store.Store.add_document": "writing",
    "rag.writer.IndexWriter.commit": "commit",
    "rag.merge.merge": "merging",
    "rag.merge._swap": "commit",
    "os.rename": "swap",
    "os.replace": "swap",
    "rag.writer.collect_garbage": "cleanup",
}


def resolve(spec: str) -> Any:
    """``pkg.module.Class.method`` or ``os.replace`` to the function object."""
    parts = spec.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ValueError(f"cannot resolve {spec!r}")


def _key(func: Any) -> Any:
    return getattr(func, "__code__", func)


def arm(target: str | None, nth: int, phase_file: str | None) -> None:
    """Install the hook in this thread and every thread started later."""
    kill_key = _key(resolve(target)) if target else None
    phases = {_key(resolve(spec)): phase for spec, phase in PHASES.items()}
    count = 0
    current = ""
    lock = threading.Lock()
    out = open(phase_file, "w", buffering=1) if phase_file else None  # noqa: SIM115

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal count, current
        if event == "call":
            key: Any = frame.f_code
        elif event == "c_call":
            key = arg
        else:
            return
        phase = phases.get(key)
        if phase is not None and out is not None and phase != current:
            with lock:
                current = phase
                out.write(phase + "\n")
        if kill_key is not None and key is kill_key:
            with lock:
                count += 1
                if count >= nth:
                    os.write(2, f"killpoint: SIGKILL at {target} call {count}\n".encode())
                    os.kill(os.getpid(), signal.SIGKILL)

    sys.setprofile(hook)
    threading.setprofile(hook)


def main(argv: list[str] | None = None, run: Callable[[list[str]], Any] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--at", default=None, help="function to die in, e.g. os.replace")
    parser.add_argument("--nth", type=int, default=1, help="die on this call of it")
    parser.add_argument("--phases", default=None, help="file to log stages to")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then `rag` arguments")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    import rag.pipeline  # noqa: F401  (import what the hook resolves before arming it)
    import rag.sync  # noqa: F401
    from rag.cli import main as rag_main

    arm(args.at, args.nth, args.phases)
    (run or (lambda a: rag_main(a)))(command)


if __name__ == "__main__":
    main()
