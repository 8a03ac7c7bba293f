"""Atomic writes: an interrupted run leaves either the old file or the new one, never half of one.

The trick is the same for files and folders: write next to the target under a temporary name,
then ``os.replace`` it into place (an atomic rename on POSIX within one filesystem).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it onto ``path`` only if the block succeeds.

    Example:
        >>> with atomic_write("metrics.json") as f:
        ...     f.write("{}")
    """
    if "r" in mode or "a" in mode:
        raise ValueError(f"atomic_write is for writing a whole file, not mode {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; give the file normal permissions
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: str | Path, payload: Any) -> Path:
    """Write ``payload`` as pretty, key-sorted JSON, atomically. Returns the path."""
    text = json.dumps(payload, indent=2, sort_keys=True, default=_json_default) + "\n"
    with atomic_write(path) as handle:
        handle.write(text)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` atomically. Returns the path."""
    with atomic_write(path) as handle:
        handle.write(text)
    return Path(path)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _json_default(value: Any) -> Any:
    # NumPy scalars and arrays, paths: the usual things that end up in a metrics dict.
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
