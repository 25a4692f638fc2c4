"""eval.harness: the one percentile definition, and servers that fail say why."""

from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from eval.harness import ServerError, percentiles, serve_rag, start


def test_percentiles_are_numpys_linear_interpolation() -> None:
    assert percentiles([4.0, 1.0, 3.0, 2.0]) == {"p50": 2.5, "p99": 3.97}
    values = [random.Random(3).uniform(0, 100) for _ in range(501)]
    got = percentiles(values, (50, 95, 99), digits=6)
    want = np.percentile(values, [50, 95, 99])
    assert list(got) == ["p50", "p95", "p99"]
    assert list(got.values()) == pytest.approx(want.tolist(), abs=1e-6)
    assert percentiles([], (50, 95)) == {"p50": 0.0, "p95": 0.0}


def _server_logs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob(f"server-{os.getpid()}-*.log"))


def test_a_server_that_exits_fails_with_its_output_and_leaves_no_log() -> None:
    before = _server_logs()
    script = "import sys; print('cannot open the index', file=sys.stderr); sys.exit(3)"
    with pytest.raises(ServerError, match="exited with 3") as raised:
        start([sys.executable, "-c", script], {}, port=1)
    assert "cannot open the index" in str(raised.value)
    assert _server_logs() == before


def test_a_server_never_ready_fails_after_the_wait_with_its_output() -> None:
    script = "import time; print('still loading', flush=True); time.sleep(60)"
    with pytest.raises(ServerError, match=r"not ready after 1 s(.|\n)*still loading"):
        start([sys.executable, "-c", script], {}, port=1, wait=1)


def test_rag_serve_with_a_bad_setting_fails_naming_it() -> None:
    with pytest.raises(ServerError, match="(?i)retriever"):
        serve_rag({"RAG_RETRIEVER": "magic"})
