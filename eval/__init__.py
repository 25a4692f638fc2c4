"""Evaluation and benchmarks: thin consumers of the rag library.

By purpose: ``eval.quality`` (how good the answers are), ``eval.bench`` (how fast),
``eval.reliability`` (what survives kills, races and fuzzing); ``eval.harness`` holds
what they and the tests share (a real server on loopback, the percentile definition).
"""

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"  # packaged: the seeds' questions, off-topic ones
SEEDS = DATA.parents[1] / "seeds"  # the sample corpus, in a source checkout only
