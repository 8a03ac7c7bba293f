"""From lab measurements to evidence: which genes an intervention moved, and direct edges.

Two statistical steps, both standard and both explained in the README:

1. **Descendants.** Clamping gene g changes exactly its descendants (faithfulness assumed: no
   exact cancellation of paths). A Welch t-test of each gene under do(g) against the control
   replicates says whether it moved, and in which direction (sign of the total effect).
2. **Direct edges.** In a linear SEM, ``x_k = sum_{i in pa(k)} W[i,k] x_i + e_k`` and ``e_k`` is
   independent of every non-descendant of k, under any experiment that does not clamp k. So an
   ordinary least-squares regression of ``x_k`` on a set ``C`` of non-descendants of k that
   *contains all parents of k*, pooled over all experiments that leave k free, recovers
   ``W[i,k]`` for the parents and 0 for the others. (Leave a parent out and its ancestors in C
   absorb its effect: omitted-variable bias.) The caller therefore passes, for each k, either
   all of k's non-descendants — known once k's descendant set is known — or nothing.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from level5_discovery.world import Measurement


@dataclass(frozen=True)
class InterventionEffect:
    """Result of one single-gene intervention: which genes moved and which way."""

    target: int
    changed: np.ndarray  # bool per gene
    direction: np.ndarray  # +1 up / -1 down / 0 unchanged, per gene, relative to the control
    t_stat: np.ndarray


def test_descendants(
    control: np.ndarray, treated: Measurement, alpha: float = 0.01
) -> InterventionEffect:
    """Welch t-test per gene, Bonferroni over the genes, for a single-target intervention.

    ``direction`` is the sign of the *total* effect of raising the target: for a knock-out the
    observed shift is flipped, since the target went down.
    """
    if len(treated.intervention.targets) != 1:
        raise ValueError("test_descendants expects a single-target intervention")
    target = treated.intervention.targets[0]
    n = control.shape[1]
    with warnings.catch_warnings():  # the clamped target column is constant: expected
        warnings.simplefilter("ignore", RuntimeWarning)
        t_stat, p_value = stats.ttest_ind(treated.values, control, axis=0, equal_var=False)
    t_stat = np.nan_to_num(t_stat)
    p_value = np.nan_to_num(p_value, nan=1.0)
    changed = p_value < alpha / max(n - 1, 1)
    changed[target] = False
    push = -1.0 if treated.intervention.kind == "knockout" else 1.0
    direction = (np.sign(t_stat) * push * changed).astype(int)
    return InterventionEffect(target, changed, direction, t_stat)


@dataclass(frozen=True)
class EdgeEvidence:
    """Regression evidence on direct edges into each gene.

    ``determined[i, k]`` is True where the data decide whether i→k exists (i was a known
    non-descendant of k and was in the regression); ``signed[i, k]`` is then -1/0/+1.
    """

    signed: np.ndarray
    determined: np.ndarray
    coef: np.ndarray
    t_stat: np.ndarray


def regress_parents(
    measurements: list[Measurement],
    non_descendant: np.ndarray,
    t_threshold: float = 3.5,
    min_effect: float = 0.5,
) -> EdgeEvidence:
    """For each gene k, OLS of x_k on its known non-descendants, pooled over experiments.

    Args:
        measurements: every experiment so far (the control included).
        non_descendant: bool ``[i, k]`` True where i is known *not* to be a descendant of k;
            column k must be all of k's non-descendants, or empty (k is then skipped).
        t_threshold: |t| above which a coefficient counts as an edge.
        min_effect: the smallest edge weight worth finding. A coefficient below the threshold
            decides "no edge" only when the test had the power to see an edge this large
            (``(t_threshold + 1) * se < min_effect``); otherwise the pair stays open and more
            experiments (more independent variation of the regressors) are needed.
    """
    n = non_descendant.shape[0]
    signed = np.zeros((n, n), dtype=int)
    determined = np.zeros((n, n), dtype=bool)
    coef = np.zeros((n, n))
    t_out = np.zeros((n, n))
    for k in range(n):
        candidates = [i for i in range(n) if i != k and non_descendant[i, k]]
        if not candidates:
            continue
        rows = [m.values for m in measurements if k not in m.intervention.targets]
        if not rows:
            continue
        data = np.vstack(rows)
        design = np.column_stack([np.ones(len(data)), data[:, candidates]])
        dof = len(data) - design.shape[1]
        if dof < 3:
            continue
        beta, *_ = np.linalg.lstsq(design, data[:, k], rcond=None)
        resid = data[:, k] - design @ beta
        sigma2 = resid @ resid / dof
        cov = sigma2 * np.linalg.pinv(design.T @ design)
        se = np.sqrt(np.clip(np.diag(cov), 1e-12, None))
        t_vals = beta / se
        for pos, i in enumerate(candidates, start=1):
            # A regressor that never varied (always clamped to one value) decides nothing.
            if np.std(data[:, i]) < 1e-6:
                continue
            coef[i, k] = beta[pos]
            t_out[i, k] = t_vals[pos]
            if abs(t_vals[pos]) > t_threshold:
                signed[i, k] = int(np.sign(beta[pos]))
                determined[i, k] = True
            elif (t_threshold + 1) * se[pos] < min_effect:
                determined[i, k] = True
    return EdgeEvidence(signed, determined, coef, t_out)


@dataclass(frozen=True)
class EdgeScores:
    """Directed-edge precision, recall, F1 and sign accuracy of an estimate against the truth."""

    precision: float
    recall: float
    f1: float
    sign_accuracy: float


def score_edges(estimate: np.ndarray, truth: np.ndarray) -> EdgeScores:
    """Compare signed adjacency matrices (−1/0/+1). Sign accuracy is over correctly found edges."""
    est, tru = estimate != 0, truth != 0
    tp = int((est & tru).sum())
    precision = tp / est.sum() if est.sum() else (1.0 if not tru.sum() else 0.0)
    recall = tp / tru.sum() if tru.sum() else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    both = est & tru
    sign_acc = float((np.sign(estimate[both]) == np.sign(truth[both])).mean()) if tp else 0.0
    return EdgeScores(float(precision), float(recall), float(f1), sign_acc)
