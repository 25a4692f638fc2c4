"""Quality: retrieval metrics on BEIR data, citation scoring, the evidence scorer."""
