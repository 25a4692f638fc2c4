from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from rag.answer import ABSTENTION, named_before
from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.evidence import FEATURES, Candidate
from rag.pipeline import Pipeline
from rag.scorer import EvidenceScorer
from rag.types import Chunk, Hit
from tests.seed_facts import ALL_SEED_QUESTIONS, OFF_TOPIC, holds


def test_answers_hold_the_fact_and_every_quote_is_exact(seed_pipeline: Pipeline) -> None:
    """All 20 answered; 19 with the fact (the composer before the evidence scorer: 18).

    The miss, "What did Japan and South Korea disagree about at the 2+2 meetings", is
    answered with the 2+2 sentence ("these differences were on full display") but not
    the one before it that says what the differences are (README "Citations").
    """
    missed = []
    for question, doc_id, fact in ALL_SEED_QUESTIONS:
        answer = seed_pipeline.ask(question)
        assert not answer.abstained, question
        if not holds(fact, answer.text):
            missed.append((question, answer.text))
        assert 1 <= len(answer.citations) <= 3
        assert len(answer.text.split()) <= 120 + 3 * 2
        assert any(c.doc_id == doc_id for c in answer.citations)
        for c in answer.citations:
            text = seed_pipeline.document(c.doc_id).text
            assert text[c.char_start:c.char_end] == c.quote and c.verified
            assert f"{c.quote} [{c.n}]" in answer.text
        assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
        assert answer.provenance.dropped_citations == 0
    assert len(missed) <= 1, missed


def test_off_topic_questions_abstain(seed_pipeline: Pipeline) -> None:
    for question in OFF_TOPIC:
        answer = seed_pipeline.ask(question)
        assert answer.abstained and answer.citations == () and answer.text == ABSTENTION
        p = answer.provenance
        assert p.best_score is not None
        assert p.best_score < p.threshold
        assert len(answer.provenance.closest) > 0


def test_citation_1_is_the_strongest_and_provenance_says_why(seed_pipeline: Pipeline) -> None:
    for question, _, _ in ALL_SEED_QUESTIONS[:5]:
        answer = seed_pipeline.ask(question)
        explained = answer.provenance.sentence_scores
        assert [s.n for s in explained] == [c.n for c in answer.citations]
        strength = [s.probability for s in explained]
        assert strength == sorted(strength, reverse=True)
        # A sentence's probability is the answerability times its share of the evidence.
        assert strength[0] <= answer.provenance.best_score
        assert answer.provenance.best_score >= answer.provenance.threshold
        for s in explained:
            assert set(s.features) == set(FEATURES)
            assert set(s.stages) == {"linear", "cross", "combined"}  # the default scorer's
        assert answer.provenance.candidates >= len(answer.citations)
        assert "cross-encoder" in answer.provenance.scorer


def test_the_linear_stage_alone_also_answers(seed_index: Path,
                                             embedder: SentenceTransformerEmbedder) -> None:
    linear = Pipeline(Settings(index_dir=seed_index, evidence_rerank=False), embedder=embedder)
    answer = linear.ask(ALL_SEED_QUESTIONS[12][0])
    assert not answer.abstained and ALL_SEED_QUESTIONS[12][2] in answer.text
    assert set(answer.provenance.sentence_scores[0].stages) == {"linear"}
    assert linear.ask(OFF_TOPIC[0]).abstained


def test_provenance_names_snapshot_model_retriever_and_timings(seed_pipeline: Pipeline) -> None:
    answer = seed_pipeline.ask(ALL_SEED_QUESTIONS[0][0], k=3, retriever="dense")
    p = answer.provenance
    assert p.snapshot == seed_pipeline.index.snapshot
    assert p.model == "all-MiniLM-L6-v2" and p.retriever == "dense"
    assert p.timings_ms is not None
    assert set(asdict(p.timings_ms)) == {"retrieve", "compose", "total"}
    assert {c.chunk_id for c in answer.citations} <= {x.chunk_id for x in p.passages}


LINDENFELD = {
    "bikes.txt": "Lindenfeld bicycle sharing\n\n"
    "Lindenfeld opened its bicycle sharing scheme in March 2019. The scheme has 1,200 bicycles "
    "spread over 85 docking stations in the old town and along the river. A ride of up to "
    "thirty minutes is free for members; longer rides cost one euro for every further half "
    "hour. Members pay an annual fee of 40 euros.",
    "stations.txt": "Docking stations\n\n"
    "Each docking station holds between 10 and 24 bicycles. Stations are emptied and refilled "
    "by two vans every night, so that the busiest stations near the railway station have "
    "bicycles in the morning. The city publishes the number of free bicycles at every station "
    "on its website, updated every minute.",
    "river.txt": "The river path\n\n"
    "The path along the river was widened to four metres in 2021. It is closed to cars and "
    "lit at night. Cyclists share it with pedestrians, who have priority.",
}


SUPPORTED = {"The Lindenfeld scheme has 1,200 bicycles.": "1,200 bicycles",
             "Members of the Lindenfeld scheme pay 40 euros a year.": "40 euros",
             "The river path is four metres wide.": "four metres"}
UNSUPPORTED_CLAIMS = ("The Lindenfeld bicycle scheme was paid for by a private bank.",
                      "Lindenfeld's bicycles were built in the Netherlands.",
                      "Electric bicycles make up half of the Lindenfeld fleet.",
                      "The mayor of Lindenfeld rides to work by bicycle.",
                      "Lindenfeld bicycle sharing reduced car traffic by a tenth.",
                      "Helmets are compulsory on Lindenfeld's shared bicycles.")
UNANSWERED_QUESTIONS = ("Who manufactured the bicycles?",
                        "How many people use the scheme each day?",
                        "What does a bicycle cost to buy?", "Who is the mayor of Lindenfeld?")


def test_on_topic_but_unanswered_mostly_abstains(
        tmp_path: Path, embedder: SentenceTransformerEmbedder, scorer: EvidenceScorer) -> None:
    """The documents are about the subject but do not say.

    Written before the scorer was run on them, and kept as they came out: 4 of the 6
    unsupported claims and the 4 unanswered questions abstain (the questions through
    the linear stage's gate, rag.scorer.Policy), while every supported claim is
    answered with its fact as [1]. The gate's cost shows on the same corpus: of the
    answerable questions, "How many bicycles does the Lindenfeld scheme have?" abstains
    too (README "Answers and abstention").
    """
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in LINDENFELD.items():
        (folder / name).write_text(text)
    pipeline = Pipeline(Settings(index_dir=tmp_path / "index"), embedder=embedder, scorer=scorer)
    pipeline.ingest([folder])
    for claim, fact in SUPPORTED.items():
        answer = pipeline.ask(claim)
        assert not answer.abstained and fact in answer.citations[0].quote, (claim, answer.text)
    claims = [pipeline.ask(c) for c in UNSUPPORTED_CLAIMS]
    questions = [pipeline.ask(q) for q in UNANSWERED_QUESTIONS]
    assert sum(a.abstained for a in claims) >= 4, [a.text for a in claims]
    assert all(a.abstained for a in questions), [a.text for a in questions]
    for a in claims + questions:
        assert a.provenance.closest if a.abstained else a.citations


def _sentences(text: str, quotes: list[str]) -> list[Candidate]:
    chunk = Chunk("d", "d#0", 0, text, 0, len(text), 0)
    hit = Hit(1, 1.0, chunk, "D", "src")
    out = []
    for q in quotes:
        start = text.index(q)
        out.append(Candidate("d", chunk, start, start + len(q), q, 1, hit, hit))
    return out


@pytest.mark.unit
def test_a_quote_whose_subject_is_a_pronoun_brings_the_sentence_that_names_it() -> None:
    text = ("Karl Friedhoff is a fellow in Chicago. In addition, he recommends that Seoul "
            "join the talks.\n\nThey met in Tokyo. The talks ended in May.")
    named, pronoun, after_break, plain = (
        "Karl Friedhoff is a fellow in Chicago.",
        "In addition, he recommends that Seoul join the talks.",
        "They met in Tokyo.", "The talks ended in May.")
    candidates = _sentences(text, [named, pronoun, after_break, plain])
    assert named_before(1, candidates, text) == 0  # "In addition, he ..." needs sentence 0
    assert named_before(2, candidates, text) is None  # a paragraph break stands between
    assert named_before(3, candidates, text) is None  # names its subject itself
    assert named_before(0, candidates, text) is None
    # the sentence before is not a candidate (another document): nothing to bring
    other = [candidates[1]]
    assert named_before(0, other, text) is None


def test_a_spreadsheet_row_answers_a_question(tmp_path: Path, embedder: SentenceTransformerEmbedder,
                                              scorer: EvidenceScorer) -> None:
    """A row ("Room: Heron hall; Capacity: 120") is a short line, not prose: it is still
    the answer to a question about it, cited with its sheet."""
    from openpyxl import Workbook

    book = Workbook()
    rooms = book.active
    rooms.title = "Rooms"
    rooms.append(["Room", "Capacity", "Floor"])
    for row in (["Heron hall", 120, 2], ["Kestrel room", 14, 1], ["Osprey room", 30, 3]):
        rooms.append(row)
    staff = book.create_sheet("Staff")
    staff.append(["Name", "Role"])
    staff.append(["Ana Costa", "Caretaker"])
    folder = tmp_path / "docs"
    folder.mkdir()
    book.save(folder / "building.xlsx")
    pipeline = Pipeline(Settings(index_dir=tmp_path / "index"), embedder=embedder, scorer=scorer)
    pipeline.ingest([folder])
    answer = pipeline.ask("How many people fit in Heron hall?")
    assert not answer.abstained, answer.provenance.closest
    first = answer.citations[0]
    assert "Heron hall" in first.quote and "120" in first.quote
    assert first.locator is not None and first.locator.sheet == "Rooms"
