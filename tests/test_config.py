"""Settings: read from RAG_* once at the edges; a bad value is one line naming the variable."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from rag.cli import main
from rag.config import Settings, load_settings
from rag.errors import SettingsError

pytestmark = pytest.mark.unit


def test_the_overlap_must_be_smaller_than_the_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CHUNK_TOKENS", "100")
    monkeypatch.setenv("RAG_CHUNK_OVERLAP", "100")
    with pytest.raises(SettingsError, match=r"RAG_CHUNK_OVERLAP \(100\) must be smaller than "
                                            r"RAG_CHUNK_TOKENS \(100\)"):
        load_settings()
    monkeypatch.setenv("RAG_CHUNK_OVERLAP", "99")
    assert load_settings().chunk_overlap == 99


def test_each_bad_value_is_named_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_PORT", "eighty")
    monkeypatch.setenv("RAG_RETRIEVER", "magic")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message and "RAG_PORT" in message and "RAG_RETRIEVER" in message


def test_the_cli_reports_a_bad_setting_without_a_traceback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CHUNK_OVERLAP", "500")
    result = CliRunner().invoke(main, ["docs"])
    assert result.exit_code == 1 and result.exception is not None
    assert result.output.strip().splitlines() == [
        "Error: invalid settings: RAG_CHUNK_OVERLAP (500) must be smaller than "
        "RAG_CHUNK_TOKENS (200)"]


def test_defaults_are_valid() -> None:
    assert Settings().chunk_overlap < Settings().chunk_tokens


def test_the_watched_collection_is_a_collection_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_WATCH_COLLECTION", "Legal Team")
    with pytest.raises(SettingsError, match="RAG_WATCH_COLLECTION: 'Legal Team' is not a "
                                            "collection name"):
        load_settings()
    monkeypatch.setenv("RAG_WATCH_COLLECTION", "legal")
    assert load_settings().watch_collection == "legal"
