"""Retrieval-augmented question answering with verified, extractive citations.

Importing the package pins Hugging Face libraries to offline mode before any of
them is imported: the service must never reach for a hub, on this machine or on
a user's air-gapped server. This writes the process environment; the library
never reads configuration from it (see rag.config.Settings).
"""

import os

for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__version__ = "0.1.0"
