"""HTTP API: a thin FastAPI layer over rag.pipeline.Pipeline."""

from api.app import create_app

__all__ = ["create_app"]
