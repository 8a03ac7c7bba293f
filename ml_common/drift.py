"""Distribution shift between a reference sample and a live one (levels 3 and 4 monitor with it)."""

from __future__ import annotations

import numpy as np


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference`` (quantile bins).

    Written by hand to teach it: bins are the reference's quantiles (open-ended at both sides),
    empty bins are floored at 1e-4 so the log stays finite. Rule of thumb: < 0.1 stable,
    0.1–0.25 moderate shift, > 0.25 large shift. An empty sample or a constant reference gives 0.
    """
    reference, current = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    if len(current) == 0 or len(reference) == 0:
        return 0.0
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return 0.0
    edges[0], edges[-1] = -np.inf, np.inf
    expected = np.histogram(reference, edges)[0] / len(reference)
    actual = np.histogram(current, edges)[0] / len(current)
    expected, actual = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))
