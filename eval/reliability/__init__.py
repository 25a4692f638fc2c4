"""Reliability: kills at chosen points, concurrent writers, API fuzzing, soak."""
