"""Compare and choose: model families and imbalance methods, on the development part only.

Every candidate family in ``selection.candidates`` (logistic regression, LightGBM with the fixed
defaults, LightGBM tuned by Optuna, the MLP) is scored on the same repeated stratified K folds
of the development part. ``choose_family`` then applies the rule declared in the config: the
family with the best mean score wins only if it beats every simpler family under the corrected
resampled t-test; otherwise the simplest family it does not beat is kept. Tuning is one
candidate among the others, not an assumption. The imbalance method is then chosen for the
chosen family, by cross-validated AP. Both are choices, so never on the test part.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from level2_churn import evaluate, split, threshold
from level2_churn.models import build_model
from level2_churn.settings import ColumnMapping, Level2Settings, MLPSettings, SelectionSettings
from ml_common.logs import get_logger

log = get_logger(__name__)
FAMILY_LABELS = {
    "lr": "logistic regression",
    "lgbm_default": "LightGBM (fixed defaults)",
    "lgbm_tuned": "LightGBM (tuned)",
    "mlp": "PyTorch MLP",
}


def build_family(
    family: str,
    columns: ColumnMapping,
    cfg: Level2Settings,
    tuned_params: dict[str, Any] | None,
    imbalance: str = "none",
    mlp: MLPSettings | None = None,
) -> Any:
    """A fresh pipeline of ``family`` (``lgbm_tuned`` takes ``tuned_params``)."""
    model = {"lr": "lr", "lgbm_default": "lgbm", "lgbm_tuned": "lgbm", "mlp": "mlp"}[family]
    params = tuned_params if family == "lgbm_tuned" else None
    return build_model(
        model, columns, cfg.seed, cfg.n_jobs, params, imbalance=imbalance, mlp=mlp or cfg.mlp
    )


def family_factories(
    columns: ColumnMapping,
    cfg: Level2Settings,
    tuned_params: dict[str, Any] | None,
    mlp: MLPSettings | None = None,
) -> dict[str, Callable[[], Any]]:
    """Model factories of every candidate family, in the config's order (simplest first)."""
    return {
        family: (lambda f=family: build_family(f, columns, cfg, tuned_params, mlp=mlp))
        for family in cfg.selection.candidates
    }


def choose_family(
    per_fold: dict[str, list[dict[str, float]]],
    rule: SelectionSettings,
    n_train: int,
    n_test: int,
) -> dict[str, Any]:
    """Apply the declared rule to per-fold scores of every candidate (the same folds for all).

    The best family by mean ``rule.metric`` is chosen only if it beats every simpler candidate
    (a positive mean difference with corrected p < ``rule.alpha``); otherwise the simplest
    candidate it does not beat significantly is chosen. Ties go to the simpler family.
    """
    metric, alpha, order = rule.metric, rule.alpha, list(rule.candidates)
    means = {f: float(np.mean([s[metric] for s in per_fold[f]])) for f in order}
    best = max(order, key=lambda f: means[f])  # max keeps the first (simplest) on ties
    best_minus = {
        f: evaluate.paired_difference(per_fold[best], per_fold[f], metric, n_train, n_test)
        for f in order
        if f != best
    }

    def beaten(f: str) -> bool:
        return f != best and best_minus[f]["mean"] > 0 and best_minus[f]["p_value"] < alpha

    chosen = next(f for f in order if not beaten(f))
    if chosen == best:
        simpler = order[: order.index(best)]
        if simpler:
            beats = ", ".join(
                f"{f} by {best_minus[f]['mean']:+.4f} (p={best_minus[f]['p_value']:.3f})"
                for f in simpler
            )
            reason = (
                f"{best} has the best mean {metric} ({means[best]:.4f}) and beats every simpler "
                f"family at corrected p < {alpha}: {beats}"
            )
        else:
            reason = f"{best}, the simplest candidate, has the best mean {metric}"
            reason += f" ({means[best]:.4f})"
    else:
        d = best_minus[chosen]
        reason = (
            f"{best} has the best mean {metric} ({means[best]:.4f}) but does not beat the simpler "
            f"{chosen} ({means[chosen]:.4f}) at corrected p < {alpha} (difference "
            f"{d['mean']:+.4f}, p={d['p_value']:.3f}): the simpler family is kept"
        )
    best_baseline = max(rule.baselines, key=lambda f: means[f])
    versus_baseline = {
        m: evaluate.paired_difference(per_fold[chosen], per_fold[best_baseline], m, n_train, n_test)
        for m in ("auc", "ap")
    }
    log.info("model choice: %s (%s)", chosen, reason)
    return {
        "rule": (
            f"best mean {metric} over {order} (simplest first); the best family must beat every "
            f"simpler one under the corrected resampled t-test at alpha={alpha}, else the "
            "simplest family it does not beat is chosen"
        ),
        "metric": metric,
        "alpha": alpha,
        "candidates": order,
        "means": means,
        "best_family": best,
        "chosen_family": chosen,
        "reason": reason,
        "best_minus": best_minus,
        "best_baseline": best_baseline,
        "champion_minus_best_baseline": versus_baseline,
        "champion_below_best_baseline": bool(
            versus_baseline[metric]["mean"] < 0 and versus_baseline[metric]["p_value"] < alpha
        ),
    }


def compare_models(
    X_dev: pd.DataFrame,
    y_dev: pd.Series,
    columns: ColumnMapping,
    cfg: Level2Settings,
    tuned_params: dict[str, Any] | None,
) -> dict[str, Any]:
    """Repeated K-fold CV of every candidate family, the family choice, the imbalance choice."""
    folds = split.repeated_stratified_folds(y_dev, cfg.cv.folds, cfg.cv.repeats, cfg.seed + 1)
    per_fold: dict[str, list[dict[str, float]]] = {}
    oof: dict[str, np.ndarray] = {}
    made = family_factories(columns, cfg, tuned_params)
    for i, (name, make) in enumerate(made.items(), start=1):
        log.info("CV %d/%d: %s on %d folds", i, len(made), name, len(folds))
        per_fold[name], oof[name] = evaluate.cross_validate(make, X_dev, y_dev, folds)

    n_test_fold = len(y_dev) // cfg.cv.folds
    sizes = {"n_train": len(y_dev) - n_test_fold, "n_test": n_test_fold}
    selection = choose_family(per_fold, cfg.selection, **sizes)
    chosen = selection["chosen_family"]
    differences = {
        f"{a}_minus_{b}": {
            m: evaluate.paired_difference(per_fold[a], per_fold[b], m, **sizes)
            for m in ("auc", "ap")
        }
        for a in cfg.selection.candidates
        for b in cfg.selection.baselines
        if a != b and cfg.selection.candidates.index(a) > cfg.selection.candidates.index(b)
    }

    # The imbalance method, for the chosen family only ("none" is its plain CV above).
    y = y_dev.to_numpy()
    imbalance = {}
    for method in cfg.cv.imbalance_methods:
        if method == "none":
            scores, p = per_fold[chosen], oof[chosen]
        else:
            log.info("CV imbalance: %s with %s on %d folds", chosen, method, len(folds))
            scores, p = evaluate.cross_validate(
                lambda m=method: build_family(chosen, columns, cfg, tuned_params, imbalance=m),
                X_dev,
                y_dev,
                folds,
            )
        cut, profit = threshold.best_threshold(y, p, cfg.business)
        imbalance[method] = {
            **evaluate.summarise(scores),
            "oof_best_threshold": cut,
            "oof_profit_per_1000": profit / len(y) * 1000,
        }
    best_method = max(imbalance, key=lambda m: imbalance[m]["ap_mean"])
    return {
        "per_fold": per_fold,
        "oof": oof,
        "differences": differences,
        "selection": selection,
        "imbalance": imbalance,
        "best_imbalance_method": best_method,
        "n_resamples": len(folds),
    }
