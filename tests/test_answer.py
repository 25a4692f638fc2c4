from __future__ import annotations

from rag.answer import ABSTENTION
from rag.pipeline import Pipeline
from tests.conftest import OFF_TOPIC, SEED_QUESTIONS


def test_answers_hold_the_fact_and_every_quote_is_exact(seed_pipeline: Pipeline) -> None:
    for question, doc_id, fact in SEED_QUESTIONS:
        answer = seed_pipeline.ask(question)
        assert not answer.abstained, question
        assert fact in answer.text, (question, answer.text)
        assert 1 <= len(answer.citations) <= 3
        assert len(answer.text.split()) <= 120 + 3 * 2
        assert any(c.doc_id == doc_id for c in answer.citations)
        for c in answer.citations:
            text = seed_pipeline.document(c.doc_id).text
            assert text[c.char_start:c.char_end] == c.quote and c.verified
            assert f"{c.quote} [{c.n}]" in answer.text
        assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
        assert answer.provenance["dropped_citations"] == 0


def test_off_topic_questions_abstain(seed_pipeline: Pipeline) -> None:
    for question in OFF_TOPIC:
        answer = seed_pipeline.ask(question)
        assert answer.abstained and answer.citations == () and answer.text == ABSTENTION
        assert answer.provenance["best_score"] < answer.provenance["threshold"]
        assert len(answer.provenance["closest"]) > 0


def test_provenance_names_snapshot_model_retriever_and_timings(seed_pipeline: Pipeline) -> None:
    answer = seed_pipeline.ask(SEED_QUESTIONS[0][0], k=3, retriever="dense")
    p = answer.provenance
    assert p["snapshot"] == seed_pipeline.index.snapshot
    assert p["model"] == "all-MiniLM-L6-v2" and p["retriever"] == "dense"
    assert set(p["timings_ms"]) == {"retrieve", "compose", "total"}
    assert {c.chunk_id for c in answer.citations} <= {x["chunk_id"] for x in p["passages"]}
