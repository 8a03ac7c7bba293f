"""Automated retraining as a Prefect flow: challenger → same holdout as champion → gate → alias.

:func:`retrain_flow` is started by the drift alarm or by the schedule (the replay calls it on both;
in production a Prefect deployment with an interval schedule and an alarm webhook would). It

1. trains a challenger on the recent labelled days (``train_days``),
2. scores champion and challenger on the same, later, labelled holdout (``holdout_days``),
3. registers the challenger (alias ``challenger``) and **promotes it only if its AP beats the
   champion's by ``margin``** (:func:`gate`): the ``champion`` alias moves to it and the old
   champion keeps the alias ``rollback``,
4. appends the decision, with both metrics and the reason, to ``decisions.jsonl``.

A worse (or not clearly better) challenger is never promoted; ``tests/level4/test_retrain.py``
checks it with a challenger trained on shuffled labels.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

# The temporary Prefect server needs more than its default 20 s to start on a busy 2-core machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
from prefect import flow, task  # noqa: E402

from level4_fraud.config import Level4Settings
from level4_fraud.evaluate import fraud_metrics
from level4_fraud.features import FEATURES
from level4_fraud.models import FraudEnsemble, as_matrix
from level4_fraud.train import fit_ensemble, log_model
from ml_common.tracking import CHALLENGER, CHAMPION, alias_version, set_alias

ROLLBACK = "rollback"


def gate(champion_ap: float, challenger_ap: float, margin: float) -> tuple[bool, str]:
    """Promote only when the challenger beats the champion by at least ``margin`` AP."""
    if challenger_ap != challenger_ap:  # NaN: nothing to compare on
        return False, "challenger AP undefined on the holdout (no fraud in it)"
    if champion_ap != champion_ap:
        return False, "champion AP undefined on the holdout"
    if challenger_ap >= champion_ap + margin:
        return True, f"challenger AP {challenger_ap:.4f} ≥ champion {champion_ap:.4f} + {margin}"
    return False, f"challenger AP {challenger_ap:.4f} < champion {champion_ap:.4f} + {margin}"


@task(name="train-challenger")
def train_challenger(
    train: pd.DataFrame, settings: Level4Settings, weights: dict[str, float]
) -> Any:
    """Fit a fresh ensemble on the recent labelled days."""
    return fit_ensemble(train, settings, weights)


@task(name="score-holdout")
def score_holdout(model: FraudEnsemble, holdout: pd.DataFrame, top_k: int) -> dict[str, float]:
    """AUC, AP and CP@k of ``model`` on the shared holdout."""
    return fraud_metrics(holdout, model.predict_proba(as_matrix(holdout[FEATURES])), top_k)


@flow(name="level4-retrain", log_prints=False)
def retrain_flow(
    train: Any,
    holdout: Any,
    champion: Any,
    settings: Any,
    trigger: str = "schedule",
    day: int | None = None,
    decisions_path: str | None = None,
    challenger: Any = None,
) -> dict[str, Any]:
    """Train (or take) a challenger, compare it with the champion, maybe promote it.

    Args:
        train: labelled feature rows for the challenger.
        holdout: later labelled rows, scored by both models.
        champion: the current champion ensemble (``None``: the challenger wins by default).
        settings: :class:`~level4_fraud.config.Level4Settings`.
        trigger: ``"drift"`` or ``"schedule"`` (recorded).
        day: the simulated day (recorded).
        decisions_path: JSON-lines file the decision is appended to.
        challenger: an already trained challenger (tests use it); trained from ``train`` if None.
    """
    cfg: Level4Settings = settings
    if challenger is None:
        weights = champion.weights if champion is not None else cfg.ensemble.weights
        challenger = train_challenger(train, cfg, weights)
    top_k = cfg.protocol.top_k
    challenger_metrics = score_holdout(challenger, holdout, top_k)
    if champion is not None:
        champion_metrics = score_holdout(champion, holdout, top_k)
        promote, reason = gate(champion_metrics["ap"], challenger_metrics["ap"], cfg.retrain.margin)
    else:
        champion_metrics, promote, reason = {}, True, "no champion yet"
    version = log_model(
        challenger,
        cfg,
        {f"holdout_{k}": v for k, v in challenger_metrics.items()},
        {"trigger": trigger, "day": day, "n_train": len(train)},
        run_name=f"retrain-day{day}-{trigger}",
    )
    set_alias(cfg.model_name, CHALLENGER, version)
    old = alias_version(cfg.model_name, CHAMPION)
    if promote:
        if old is not None:
            set_alias(cfg.model_name, ROLLBACK, old)
        set_alias(cfg.model_name, CHAMPION, version)
    decision = {
        "day": day,
        "trigger": trigger,
        "challenger_version": version,
        "champion_version_before": old,
        "champion_version_after": version if promote else old,
        "promoted": promote,
        "reason": reason,
        "champion": champion_metrics,
        "challenger": challenger_metrics,
        "margin": cfg.retrain.margin,
        "n_train": len(train),
        "n_holdout": len(holdout),
        "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if decisions_path:
        path = Path(decisions_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(json.dumps(decision) + "\n")
    return decision


def rollback(settings: Level4Settings) -> int | None:
    """Point ``champion`` back at the ``rollback`` version; return it (``None`` if none kept)."""
    previous = alias_version(settings.model_name, ROLLBACK)
    if previous is not None:
        set_alias(settings.model_name, CHAMPION, previous)
    return previous
