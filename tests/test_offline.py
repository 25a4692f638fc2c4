"""Nothing is downloaded at run time: the tokenizer and model load with no network."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent("""
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    socket.socket.connect = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    import sys, tempfile
    from pathlib import Path
    import rag
    from rag.chunking import cl100k
    from rag.embedding import SentenceTransformerEmbedder

    assert cl100k().encode("offline") == cl100k().encode("offline")
    e = SentenceTransformerEmbedder("all-MiniLM-L6-v2", onnx_cache=Path(tempfile.mkdtemp()),
                                    backend="onnx")
    assert e._onnx is not None  # the ONNX export is made locally, too
    v = e.embed(["no network needed"])
    print("OK", v.shape[1], e.max_tokens)
""")


def _run(prefix: list[str]) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "TIKTOKEN_CACHE_DIR": "/nonexistent"}
    return subprocess.run([*prefix, sys.executable, "-c", PROBE], capture_output=True,
                          text=True, timeout=180, env=env)


def test_tokenizer_and_model_load_with_sockets_refused() -> None:
    result = _run([])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "OK 384 256" in result.stdout


@pytest.mark.skipif(shutil.which("unshare") is None, reason="util-linux unshare not installed")
def test_tokenizer_and_model_load_in_a_namespace_without_network() -> None:
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {probe.stderr.decode()[:200]}")
    result = _run(["unshare", "-n"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "OK 384 256" in result.stdout
