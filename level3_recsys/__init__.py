"""level3_recsys

One BLAS thread, set before anything imports NumPy: every process that starts in this package
(``python -m level3_recsys``, ``uvicorn level3_recsys.serve:…``) imports this file first, and it
imports ``ml_common``, which sizes every native pool (``ml_common/threads.py``: one thread per
process unless ``ML_THREADS`` says more). Serving scores one history at a time (a vector-matrix
product): a second OpenBLAS thread spin-waits on the other core, which on a 2-core machine is the
core the event loop and the load generator need — measured at 200 rps: p99 18-20 ms with two
BLAS threads, 10-12 ms with one. ``implicit`` (ALS, BPR) follows the same setting.
"""

import ml_common  # noqa: F401
