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

:func:`retrain_windows` gives the training and holdout days of a cycle on day ``t`` (only days whose
labels have arrived, i.e. before ``t − delay_days``); the replay and :func:`run_retrain_cycle`
(``python -m level4_fraud retrain``, the Kubernetes CronJob) both use it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

# Prefect's start-up budget is ml_common's one value (tool_defaults.PREFECT_STARTUP_BUDGET_S),
# set when level4_fraud's package imports ml_common, before Prefect loads.
from prefect import flow, task

from level4_fraud.config import Level4Settings
from level4_fraud.data.features import FEATURES, as_matrix
from level4_fraud.data.protocol import collect_period, day_slice, new_builder
from level4_fraud.data.simulate import TransactionSimulator
from level4_fraud.models.ensemble import FraudEnsemble
from level4_fraud.training.evaluate import fraud_metrics
from level4_fraud.training.registry import load_model, log_model
from level4_fraud.training.train import fit_ensemble
from ml_common.atomic import write_json
from ml_common.cli import UsageError
from ml_common.config import dump_settings
from ml_common.paths import level_dir
from ml_common.tracking import CHALLENGER, CHAMPION, alias_version, set_alias

ROLLBACK = "rollback"
TRIGGERS = ("schedule", "drift")


class NoChampionError(UsageError):
    """A retraining cycle was asked for before any model was registered as champion."""


def retrain_windows(day: int, settings: Level4Settings) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((train_start, train_stop), (holdout_start, holdout_stop))`` of a cycle on ``day``.

    Labels arrive ``delay_days`` late, so the holdout is the ``holdout_days`` days ending just
    before ``day − delay_days`` and the training window the ``train_days`` days before it
    (stops exclusive).
    """
    labelled_stop = day - settings.protocol.delay_days
    hold_start = labelled_stop - settings.retrain.holdout_days
    return (hold_start - settings.retrain.train_days, hold_start), (hold_start, labelled_stop)


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


def run_retrain_cycle(
    settings: Level4Settings,
    day: int | None = None,
    trigger: str = "schedule",
    *,
    out_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """One retraining cycle on simulated ``day``: ``python -m level4_fraud retrain``.

    Loads the registered champion, rebuilds the recent labelled days from the simulator and the
    feature builder (as the replay does), runs :func:`retrain_flow` and appends its decision to
    ``out_dir/decisions.jsonl`` (default ``artifacts/level4/retrain/``) with the resolved config
    beside it.

    Args:
        settings: the level's settings.
        day: the simulated day the cycle runs on (default ``simulation.n_days``, the day after
            the simulation's last one).
        trigger: ``"schedule"`` or ``"drift"`` (recorded with the decision).
        out_dir: where ``decisions.jsonl`` and ``config.json`` go.
        progress: show a progress bar while the days are simulated.

    Raises:
        NoChampionError: no ``champion`` is registered (run ``python -m level4_fraud train``).
        UsageError: an unknown trigger, or a day outside the simulation or too early for the
            windows.
    """
    if trigger not in TRIGGERS:
        raise UsageError(f"trigger must be one of {', '.join(TRIGGERS)}, not {trigger!r}")
    n_days = settings.simulation.n_days
    day = n_days if day is None else day
    (train_start, train_stop), (hold_start, hold_stop) = retrain_windows(day, settings)
    if not 0 < day <= n_days:
        raise UsageError(f"--day {day} is outside the simulation: choose 1 … {n_days}")
    if train_start < 0:
        needed = settings.retrain.train_days + settings.retrain.holdout_days
        raise UsageError(
            f"--day {day} is too early: a cycle needs {needed} labelled days (retrain.train_days "
            f"+ holdout_days) before day − delay_days ({settings.protocol.delay_days})"
        )
    champion = load_model(settings, CHAMPION)
    if champion is None:
        raise NoChampionError(
            f"no champion registered for model {settings.model_name!r}: "
            "run `python -m level4_fraud train` first"
        )
    sim = TransactionSimulator(settings.simulation)
    builder = new_builder(settings.simulation, settings.protocol.delay_days)
    frame = collect_period(sim, builder, train_start, hold_stop, progress=progress)
    out_dir = out_dir or level_dir(4) / "retrain"
    decision = retrain_flow(
        day_slice(frame, train_start, train_stop),
        day_slice(frame, hold_start, hold_stop),
        champion,
        settings,
        trigger=trigger,
        day=day,
        decisions_path=str(out_dir / "decisions.jsonl"),
    )
    write_json(out_dir / "config.json", dump_settings(settings))
    decision["windows"] = {"train": [train_start, train_stop], "holdout": [hold_start, hold_stop]}
    return decision


def format_decision(decision: dict[str, Any]) -> str:
    """The decision in three lines for the terminal."""
    champ, chall = decision["champion"], decision["challenger"]
    windows = decision.get("windows", {})

    def days(name: str) -> str:
        start, stop = windows.get(name, (None, None))
        return "" if start is None else f" (days {start}–{stop - 1})"

    lines = [
        f"retrain on day {decision['day']} ({decision['trigger']}): "
        f"{'PROMOTED' if decision['promoted'] else 'not promoted'} — {decision['reason']}",
        f"  champion v{decision['champion_version_before']} AP {champ.get('ap', float('nan')):.4f}"
        f" · challenger v{decision['challenger_version']} AP {chall['ap']:.4f}"
        f" · margin {decision['margin']}",
        f"  {decision['n_train']:,} training rows{days('train')}, "
        f"{decision['n_holdout']:,} holdout rows{days('holdout')} · champion now "
        f"v{decision['champion_version_after']}",
    ]
    return "\n".join(lines)


def rollback(settings: Level4Settings) -> int | None:
    """Point ``champion`` back at the ``rollback`` version; return it (``None`` if none kept)."""
    previous = alias_version(settings.model_name, ROLLBACK)
    if previous is not None:
        set_alias(settings.model_name, CHAMPION, previous)
    return previous
