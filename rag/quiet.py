"""The libraries' own noise off, for the command line: a user of `rag` sees our progress
bars and messages, not those of the libraries underneath (`rag --verbose` keeps them).

What the first `rag ask` or `rag ingest` on a fresh index printed, while it exported the
models to ONNX: transformers' "Loading weights" progress bar, a transformers FutureWarning,
the ONNX exporter's UserWarning and onnxruntime's quantizer's `WARNING:root:Please consider
to run pre-processing before quantization`. Called by the CLI (rag/cli.py) before any of
those libraries is imported: the progress bars' switch is read when they are.
"""

from __future__ import annotations

import logging
import os
import warnings

# The libraries whose warnings and log records below ERROR are not for our users.
NOISY = ("transformers", "torch", "sentence_transformers", "onnxruntime", "onnx",
         "onnxscript", "huggingface_hub", "optimum")


def _named(record: logging.LogRecord) -> bool:
    """Records of named loggers pass; those a library logs on the root logger itself
    (`logging.warning(...)`, as onnxruntime's quantizer does) do not."""
    return record.name != "root"


def quiet_libraries() -> None:
    """Progress bars, Python warnings and log records of ``NOISY`` off in this process and
    the workers it starts; our own loggers (rag.*) and progress bars are left alone."""
    # read by huggingface_hub and transformers (its tqdm) when they are imported
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for name in NOISY:
        warnings.filterwarnings("ignore", module=rf"{name}(\.|$)")
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger().addFilter(_named)
