"""Evaluation and benchmarks: thin consumers of the rag library."""
