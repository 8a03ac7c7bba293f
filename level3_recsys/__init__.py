"""level3_recsys

One BLAS thread, set before anything imports NumPy (``uvicorn level3_recsys.serve:…`` imports
this package first). Serving scores one history at a time (a vector-matrix product): a second
OpenBLAS thread spin-waits on the other core, which on a 2-core machine is the core the event
loop and the load generator need — measured at 200 rps: p99 18-20 ms with two BLAS threads,
10-12 ms with one. The command line (``__main__``) has set the same default since the start.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
