"""level1_notebooks"""

# ml_common first: it sizes the native thread pools and sets the tools' environment defaults
# before this package imports NumPy, PyTorch or Prefect (ml_common/threads.py, tool_defaults.py).
import ml_common  # noqa: F401
