"""Native thread pools, sized in one place: one thread per process unless ``ML_THREADS`` says more.

NumPy's OpenBLAS (and ``implicit``'s own copy), MKL, OpenMP (LightGBM, ``implicit``, faiss,
scikit-learn's Cython loops) and PyTorch each start a pool with one thread per core when they
load. On a shared machine that is a trap: two processes with two-thread pools on two busy cores
made ``implicit``'s ALS go from about a minute to over twenty. Parallelism in this project comes
from processes (the matrix runner's workers, pytest's own process, the services), so each
process's native pools get ``ML_THREADS`` threads (default 1).

Two mechanisms, because a pool is sized when its library loads:

- environment variables (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``, …),
  set by :func:`apply_thread_limits` when ``ml_common`` is first imported, before any level
  imports NumPy; child processes inherit them;
- ``threadpoolctl`` for the libraries already loaded (a notebook kernel or a test plugin that
  imported NumPy first), and ``torch.set_num_threads`` when PyTorch is already imported.

``ML_THREADS`` is the one knob: the per-library variables are derived from it and overwritten,
so every entry point (CLI, service, test, DVC stage) runs with the same pool sizes.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

#: Threads per native pool when ``ML_THREADS`` is unset: one per process (see the module text).
DEFAULT_THREADS = 1

#: The variables each native runtime reads once, when it loads.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",  # OpenMP: LightGBM, implicit, faiss, scikit-learn, PyTorch
    "OPENBLAS_NUM_THREADS",  # NumPy's and implicit's OpenBLAS
    "MKL_NUM_THREADS",  # MKL builds of NumPy / PyTorch
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",  # macOS Accelerate
    "NUMEXPR_NUM_THREADS",
)

# Modules whose import loads a native pool: if one is already in sys.modules, threadpoolctl is
# needed because the environment variables come too late for it.
_NUMERIC_MODULES = ("numpy", "scipy", "sklearn", "torch", "lightgbm", "implicit", "faiss")


def thread_count() -> int:
    """Threads per native pool for this process: ``ML_THREADS`` (a whole number >= 1) or 1."""
    raw = os.environ.get("ML_THREADS", "").strip()
    if not raw:
        return DEFAULT_THREADS
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"ML_THREADS must be a whole number >= 1 (threads per process): {raw!r}")
    return count


def _limit_loaded_libraries(count: int) -> None:
    """Resize the pools of native libraries that are already loaded (no-op when none is)."""
    if not any(name in sys.modules for name in _NUMERIC_MODULES):
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a slim serving image without it: the variables set above must do
        return
    # Not used as a context manager: the limit stays for the life of the process.
    threadpool_limits(limits=count)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(count)


def apply_thread_limits(count: int | None = None) -> int:
    """Size every native thread pool of this process (and its future children) to ``count``
    threads (default :func:`thread_count`); return the count used."""
    count = thread_count() if count is None else count
    if count < 1:
        raise ValueError(f"thread count must be >= 1, got {count}")
    os.environ["ML_THREADS"] = str(count)
    for name in THREAD_VARIABLES:
        os.environ[name] = str(count)
    _limit_loaded_libraries(count)
    return count


@contextlib.contextmanager
def limit_threads(count: int) -> Iterator[None]:
    """Within the block, native pools (and PyTorch's intra-op pool) use ``count`` threads; the
    previous sizes come back afterwards. For a block that should use more (or fewer) threads
    than the process default, e.g. one large solve on an otherwise idle machine."""
    if count < 1:
        raise ValueError(f"thread count must be >= 1, got {count}")
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    previous_torch = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=count):
        if torch is not None:
            torch.set_num_threads(count)
        try:
            yield
        finally:
            if torch is not None and previous_torch is not None:
                torch.set_num_threads(previous_torch)
