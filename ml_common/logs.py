"""Logging set-up shared by every command: one format, rich output on a terminal."""

from __future__ import annotations

import logging
import os
import sys

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: str | int | None = None) -> None:
    """Configure the root logger once. ``LOG_LEVEL`` overrides the default ``INFO``."""
    level = level or os.environ.get("LOG_LEVEL", "INFO")
    if isinstance(level, str):
        level = level.upper()
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(rich_tracebacks=False, show_path=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Libraries that are chatty at INFO.
    for noisy in (
        "alembic",
        "mlflow",
        "urllib3",
        "httpx",
        "numba",
        "matplotlib",
        "PIL",
        "faiss",
        "sentence_transformers",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> logging.Logger:
    """The logger for a module; use ``get_logger(__name__)``."""
    return logging.getLogger(name)
