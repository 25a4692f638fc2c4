"""Answers an LLM writes, shown only sentence by verified sentence.

The writer (rag.llm) gets the passages numbered [1]..[k]; as its reply streams
in, each finished sentence is judged (rag.verify). A supported sentence is
emitted at once with a citation to its best supporting sentence, a span checked
against the store; an unsupported one is left out and listed in provenance with
its reason. When nothing survives, or the model says the documents don't say,
the extractive answer (or its abstention) is returned instead, and provenance
says so.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from rag.answer import Composer, cite
from rag.arrays import Vectors
from rag.config import AnswerMode
from rag.errors import InputError, LLMError
from rag.index import Index
from rag.llm import NO_ANSWER, PROMPT_VERSION, Writer, render_prompt
from rag.types import Answer, Citation, Generation, Hit, Passage, Provenance, Rejected
from rag.verify import Claim, Verdict, Verifier, split_claims


@dataclass(frozen=True, slots=True)
class Sentence:
    """One verified sentence of an answer as it streams: its text and its citations."""

    text: str
    citations: tuple[Citation, ...]


class GenerativeComposer:
    """Writer + verifier; ``fallback_on_error`` answers extractively when the LLM fails."""

    def __init__(self, writer: Writer, verifier: Verifier, extractive: Composer,
                 base_url: str, max_sentences: int = 4,
                 fallback_on_error: bool = False) -> None:
        self.writer = writer
        self.verifier = verifier
        self.extractive = extractive
        self.base_url = base_url
        self.max_sentences = max_sentences
        self.fallback_on_error = fallback_on_error

    def stream(self, question: str, hits: Sequence[Hit], index: Index,
               vector: Vectors) -> Iterator[Sentence | Answer]:
        """Verified sentences as they are written, then the whole Answer."""
        t0 = time.perf_counter()
        about = Generation(self.writer.name, self.base_url, PROMPT_VERSION)
        if not hits:
            yield from self._fallback(question, hits, index, vector, about, "nothing was retrieved")
            return
        prompt = render_prompt(question, hits, self.max_sentences)
        kept: list[tuple[Claim, Verdict, Citation]] = []
        rejected: list[Rejected] = []
        spans: dict[tuple[str, int, int], Citation] = {}
        verify_s = 0.0
        buffer, written = "", ""
        try:
            pieces = self.writer.stream(prompt)
            done = False
            while not done:
                piece = next(pieces, None)
                done = piece is None
                buffer += piece or ""
                written += piece or ""
                claims = split_claims(buffer)
                ready = claims if done else claims[:-1]
                if not ready:
                    continue
                buffer = buffer[claims[-1].start:] if not done else ""
                t = time.perf_counter()
                verdicts = self.verifier.judge(ready, hits, index)
                verify_s += time.perf_counter() - t
                for v in verdicts:
                    sentence = self._keep(v, index, spans, kept, rejected)
                    if sentence is not None:
                        yield sentence
        except LLMError as exc:
            if not self.fallback_on_error:
                raise
            yield from self._fallback(question, hits, index, vector,
                                 replace(about, failure=str(exc)), "the LLM failed")
            return
        about = replace(about, kept=len(kept), rejected=tuple(rejected),
                        llm_ms=round((time.perf_counter() - t0 - verify_s) * 1000, 2),
                        verify_ms=round(verify_s * 1000, 2))
        if not kept:
            said_no = any(_plain(c.text) == _plain(NO_ANSWER) for c in split_claims(written))
            reason = "the model said the documents don't say" if said_no else \
                "no generated sentence was supported by its cited passage"
            yield from self._fallback(question, hits, index, vector, about, reason)
            return
        yield self._answer(question, kept, about, hits)

    def _keep(self, v: Verdict, index: Index, spans: dict[tuple[str, int, int], Citation],
              kept: list[tuple[Claim, Verdict, Citation]],
              rejected: list[Rejected]) -> Sentence | None:
        c = v.support
        key = (c.doc_id, c.start, c.end) if c is not None else None
        citation = spans.get(key) if key is not None else None
        if citation is None and c is not None and v.reason is None:
            citation = cite(c, len(spans) + 1, index)
        if v.reason is None and citation is not None and len(kept) < self.max_sentences:
            assert key is not None
            spans[key] = citation
            kept.append((v.claim, v, citation))
            return Sentence(f"{v.claim.text} [{citation.n}]", (citation,))
        reason = v.reason or ("too many sentences" if citation is not None
                              else "its support did not verify against the stored text")
        rejected.append(Rejected(v.claim.text, v.claim.cites, reason, v.probability,
                                 v.missing))
        return None

    def _answer(self, question: str, kept: list[tuple[Claim, Verdict, Citation]],
                about: Generation, hits: Sequence[Hit]) -> Answer:
        citations = tuple(dict.fromkeys(c for _, _, c in kept))
        text = " ".join(f"{claim.text} [{c.n}]" for claim, _, c in kept)
        scores = tuple(replace(v.score, n=c.n) for _, v, c in kept if v.score is not None)
        passages = {hits[n - 1].chunk.chunk_id: Passage.of(hits[n - 1])
                    for claim, _, _ in kept for n in claim.cites}
        best = max((s.probability for s in scores), default=None)
        provenance = Provenance(self.verifier.scorer.name, len(kept), best,
                                self.verifier.threshold, tuple(passages.values()), scores,
                                mode="generative", generation=about)
        return Answer(question, text, citations, False, provenance)

    def _fallback(self, question: str, hits: Sequence[Hit], index: Index, vector: Vectors,
                  about: Generation, why: str) -> Iterator[Sentence | Answer]:
        """The extractive answer's sentences, then the answer, with why in provenance."""
        answer = self.extractive.compose(question, hits, index, vector)
        about = replace(about, fallback=f"extractive: {why}")
        yield from sentences_of(answer)
        yield replace(answer, provenance=replace(answer.provenance, generation=about))


def choose_mode(mode: AnswerMode | None, llm_configured: bool) -> AnswerMode:
    """The mode asked for, or the default: generative when an LLM is configured."""
    if mode is None:
        return "generative" if llm_configured else "extractive"
    if mode == "generative" and not llm_configured:
        raise InputError("generative answers need an LLM: set RAG_LLM_BASE_URL (and "
                         "RAG_LLM_MODEL) to an OpenAI-compatible server, or ask with mode "
                         "extractive")
    return mode


def _plain(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def sentences_of(answer: Answer) -> list[Sentence]:
    """An answer's sentences with their citations, for streaming an extractive answer."""
    by_n = {c.n: c for c in answer.citations}
    if answer.abstained or not answer.citations:
        return [Sentence(answer.text, ())]
    return [Sentence(f"{by_n[n].quote} [{n}]", (by_n[n],)) for n in sorted(by_n)]
