"""level3_recsys

One BLAS thread, set before anything imports NumPy: every process that starts in this package
(``python -m level3_recsys``, ``uvicorn level3_recsys.serve:…``) imports this file first, so this
is the one place it is set. Serving scores one history at a time (a vector-matrix product): a
second OpenBLAS thread spin-waits on the other core, which on a 2-core machine is the core the
event loop and the load generator need — measured at 200 rps: p99 18-20 ms with two BLAS
threads, 10-12 ms with one. ``implicit`` (ALS, BPR) asks for one thread as well.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
