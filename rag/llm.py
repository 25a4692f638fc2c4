"""Any OpenAI-compatible chat server (Ollama, vLLM, llama.cpp's server, OpenAI) as a writer.

The ``openai`` client does the HTTP, the JSON and the server-sent events; this
module only bounds the time, turns every way the server can fail into one of two
errors that name its URL (unreachable or bad answer: 502; too slow: 504), and
renders the versioned prompt in rag/prompts.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from rag.errors import LLMError, LLMTimeoutError
from rag.types import Hit

PROMPT_VERSION = "answer-v1"
PROMPT_FILE = Path(__file__).parent / "prompts" / f"{PROMPT_VERSION}.txt"
NO_ANSWER = "The documents don't say."


@cache
def _template() -> str:
    """The versioned template, read from the package once rather than on every answer."""
    return PROMPT_FILE.read_text(encoding="utf-8")


def render_prompt(question: str, hits: Sequence[Hit], max_sentences: int = 4,
                  template: str | None = None) -> str:
    """The prompt: passages numbered [1]..[k] with their titles, then the question."""
    text = template if template is not None else _template()
    passages = "\n\n".join(f"[{n}] {h.title}\n{h.chunk.text}" for n, h in
                           enumerate(hits, start=1))
    return text.format(passages=passages, question=question, no_answer=NO_ANSWER,
                       max_sentences=max_sentences)


@dataclass(frozen=True, slots=True)
class LLMConfig:
    base_url: str
    model: str
    api_key: str = "not-needed"
    timeout_s: float = 60.0
    max_tokens: int = 300
    temperature: float = 0.0


class Writer(ABC):
    """Writes text for a prompt; ``stream`` yields it in pieces as they arrive."""

    name: str

    @abstractmethod
    def stream(self, prompt: str) -> Iterator[str]:
        """The reply in pieces; raises LLMError or LLMTimeoutError."""

    def complete(self, prompt: str) -> str:
        return "".join(self.stream(prompt))


class OpenAIWriter(Writer):
    def __init__(self, config: LLMConfig) -> None:
        import openai

        self.config = config
        self.name = config.model
        self._openai = openai
        self._client = openai.OpenAI(base_url=config.base_url, api_key=config.api_key,
                                     timeout=config.timeout_s, max_retries=0)

    def stream(self, prompt: str) -> Iterator[str]:
        deadline = time.monotonic() + self.config.timeout_s
        with self._errors():
            chunks: Any = self._client.chat.completions.create(
                model=self.config.model, messages=[{"role": "user", "content": prompt}],
                max_tokens=self.config.max_tokens, temperature=self.config.temperature,
                stream=True)
            received = 0
            try:
                for chunk in chunks:
                    received += 1
                    if time.monotonic() > deadline:
                        raise self._openai.APITimeoutError(request=chunks.response.request)
                    if not getattr(chunk, "choices", None):
                        continue
                    piece = chunk.choices[0].delta.content
                    if piece:
                        yield piece
            finally:
                chunks.close()
            if not received:  # a 200 whose body held no server-sent event at all
                raise LLMError(f"the LLM at {self.config.base_url} sent a reply that is not "
                               "an OpenAI chat completion stream (no events)")

    def _errors(self) -> _Translate:
        return _Translate(self._openai, self.config.base_url, self.config.timeout_s)


class _Translate:
    """Every failure of the client or the server as LLMError / LLMTimeoutError."""

    def __init__(self, openai: Any, url: str, timeout_s: float) -> None:
        self.openai, self.url, self.timeout_s = openai, url, timeout_s

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if exc is None or isinstance(exc, (LLMError, GeneratorExit)):
            return
        o = self.openai
        if isinstance(exc, o.APITimeoutError):
            raise LLMTimeoutError(f"the LLM at {self.url} did not answer within "
                                  f"{self.timeout_s:g} s: raise RAG_LLM_TIMEOUT_S or check "
                                  "the server") from None
        if isinstance(exc, o.APIConnectionError):
            raise LLMError(f"cannot reach the LLM at {self.url}: check RAG_LLM_BASE_URL and "
                           "that the server is running") from None
        if isinstance(exc, o.APIStatusError):
            raise LLMError(f"the LLM at {self.url} answered HTTP {exc.status_code}: "
                           f"{_short(exc.message)}") from None
        if isinstance(exc, (o.OpenAIError, ValueError, KeyError, TypeError, AttributeError)):
            raise LLMError(f"the LLM at {self.url} sent a reply that is not an OpenAI chat "
                           f"completion ({_short(str(exc))})") from None


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"
