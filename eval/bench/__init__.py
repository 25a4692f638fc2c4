"""Speed: ingest and search timings in-process, over HTTP, under load, against txtai."""
