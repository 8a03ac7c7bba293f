"""Train the ensemble (LightGBM + FraudNet + isolation forest), select it prequentially, track it.

- :func:`fit_members` trains the three members on one period's feature rows.
- :func:`prequential_weights` chooses the ensemble weights by walk-forward validation: for each
  fold the train and test windows move one test-period back in time, members are trained on the
  fold's train window and every candidate weighting is scored (AP) on the fold's test week.
- registering and loading by alias: :mod:`level4_fraud.training.registry`.
- :func:`run_protocol` is the handbook's protocol end to end: train period, delay, test week
  (:func:`fit_and_test` is its training and scoring part, shared with :func:`train_and_register`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from tqdm import tqdm

from level4_fraud.config import Level4Settings
from level4_fraud.data.features import FEATURES, LABEL, as_matrix
from level4_fraud.data.protocol import (
    collect_period,
    day_slice,
    new_builder,
    protocol_periods,
    walk_forward_folds,
)
from level4_fraud.data.simulate import TransactionSimulator
from level4_fraud.models.anomaly import train_isolation_forest
from level4_fraud.models.ensemble import FraudEnsemble, score_member
from level4_fraud.models.fraudnet import train_torch_model
from level4_fraud.models.trees import train_lightgbm
from level4_fraud.training.evaluate import fraud_metrics
from ml_common.config import ConfigError


def fit_members(frame: pd.DataFrame, settings: Level4Settings) -> dict[str, Any]:
    """The three members trained on ``frame`` (feature rows with labels)."""
    X, y = as_matrix(frame[FEATURES]), frame[LABEL].to_numpy()
    if y.sum() == 0:
        raise ConfigError("the training period has no fraud: choose a longer or later period")
    members = {
        "lightgbm": train_lightgbm(X, y, settings.lightgbm),
        "fraudnet": train_torch_model(X, y, settings.torch).cpu(),
        "isolation_forest": train_isolation_forest(
            X, n_estimators=settings.ensemble.isolation_trees, seed=settings.simulation.seed
        ),
    }
    return members


def fit_ensemble(
    frame: pd.DataFrame, settings: Level4Settings, weights: dict[str, float] | None = None
) -> FraudEnsemble:
    """An ensemble trained on ``frame`` with ``weights`` (default: the configured ones)."""
    return FraudEnsemble(fit_members(frame, settings), dict(weights or settings.ensemble.weights))


def prequential_weights(
    frame: pd.DataFrame, settings: Level4Settings, train_start: int, train_days: int
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Choose ensemble weights by walk-forward validation inside the training data.

    Fold ``i`` tests on the week ending ``i`` test-periods before the end of the training window,
    after the delay, training on the ``train_days − delay − test`` days before it.
    """
    p = settings.protocol
    results = []
    folds = walk_forward_folds(
        train_start, train_days, p.prequential_folds, p.delay_days, p.test_days
    )
    for fold, (fold_train_start, fold_train_stop, test_start, test_stop) in enumerate(folds):
        train = day_slice(frame, fold_train_start, fold_train_stop)
        test = day_slice(frame, test_start, test_stop)
        if train.empty or test.empty or train[LABEL].sum() == 0:
            continue
        members = fit_members(train, settings)
        scores = {n: score_member(m, as_matrix(test[FEATURES])) for n, m in members.items()}
        for i, weights in enumerate(settings.ensemble.candidates):
            ens = FraudEnsemble({}, weights)
            metrics = fraud_metrics(test, ens.combine(scores), p.top_k)
            results.append({"fold": fold, "candidate": i, **metrics})
    if not results:
        return dict(settings.ensemble.weights), []
    table = pd.DataFrame(results).groupby("candidate")["ap"].mean()
    best = int(table.idxmax())
    return dict(settings.ensemble.candidates[best]), results


def fit_and_test(
    frame: pd.DataFrame, settings: Level4Settings
) -> tuple[FraudEnsemble, dict[str, Any]]:
    """The protocol on feature rows covering its days: weights chosen prequentially inside the
    training period, the ensemble trained on it, every member and the ensemble scored on the
    test week. Returns the ensemble and ``{ensemble, <member>..., weights, prequential, periods}``.
    """
    p = settings.protocol
    train_start, train_stop, test_start, test_stop = protocol_periods(settings)
    train, test = day_slice(frame, train_start, train_stop), day_slice(frame, test_start, test_stop)
    weights, folds = prequential_weights(frame, settings, train_start, p.train_days)
    ensemble = fit_ensemble(train, settings, weights)
    scores = ensemble.member_scores(as_matrix(test[FEATURES]))
    return ensemble, {
        "ensemble": fraud_metrics(test, ensemble.combine(scores), p.top_k),
        **{n: fraud_metrics(test, s, p.top_k) for n, s in scores.items()},
        "weights": weights,
        "prequential": folds,
        "periods": {"train": [train_start, train_stop], "test": [test_start, test_stop]},
    }


def run_protocol(settings: Level4Settings, *, progress: bool = True) -> dict[str, Any]:
    """The handbook's protocol on the configured simulation; returns every model's metrics.

    Train on ``train_days`` days from ``train_start_day``, skip ``delay_days``, test on the
    following ``test_days``. Ensemble weights are chosen by prequential validation inside the
    training period; LightGBM, FraudNet and the isolation forest are reported alone too.
    """
    train_start, train_stop, test_start, test_stop = protocol_periods(settings)
    sim = TransactionSimulator(settings.simulation)
    builder = new_builder(settings.simulation, settings.protocol.delay_days)
    frame = collect_period(sim, builder, train_start, test_stop, progress=progress)
    ensemble, result = fit_and_test(frame, settings)
    test = day_slice(frame, test_start, test_stop)
    result["n_train"] = len(day_slice(frame, train_start, train_stop))
    result["n_test"] = len(test)
    result["fraud_rate_test"] = float(test[LABEL].mean())
    result["model"] = ensemble
    return result


def protocol_summary(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON-safe part of :func:`run_protocol`'s result."""
    return {k: v for k, v in result.items() if k != "model"}


def train_and_register(settings: Level4Settings, *, progress: bool = True) -> dict[str, Any]:
    """``python -m level4_fraud train``: the protocol with Feast, MLflow and the registry.

    Streams the simulation up to the end of the protocol's test week, writing each day's
    snapshots to the Feast offline store; joins the training and test rows point-in-time from
    Feast (``use_feast``); trains and evaluates as :func:`run_protocol`; logs and registers the
    ensemble with alias ``champion``; pushes the latest snapshots to the online store for the
    scoring service. Writes ``artifacts/level4/train/metrics.json`` and ``config.json``.
    """
    from level4_fraud.data.feature_store import (
        SnapshotWriter,
        open_store,
        push_online,
        training_frame,
    )
    from level4_fraud.training.registry import log_model
    from ml_common.atomic import write_json
    from ml_common.config import dump_settings
    from ml_common.paths import level_dir
    from ml_common.tracking import CHAMPION, set_alias

    train_start, _, _, test_stop = protocol_periods(settings)
    sim = TransactionSimulator(settings.simulation)
    builder = new_builder(settings.simulation, settings.protocol.delay_days)
    writer = SnapshotWriter()
    raw, built = [], []
    for day in tqdm(
        range(test_stop + 1), desc="simulate+snapshots", unit="day", disable=not progress
    ):
        customer, terminal = writer.add_day(builder, day)
        if day == test_stop:
            break  # only the snapshot of the day after the test week: what is served next
        frame = sim.day(day)
        if day >= train_start:
            raw.append(frame)
            built.append(builder.transform_day(frame))
        else:
            builder.record_day(frame, day)
    writer.flush()
    store = open_store()
    push_online(store, customer, terminal)
    if settings.use_feast:
        frame = training_frame(store, pd.concat(raw, ignore_index=True))
    else:
        frame = pd.concat(built, ignore_index=True)
    ensemble, summary = fit_and_test(frame, settings)
    summary["features_from"] = "feast" if settings.use_feast else "builder"
    version = log_model(
        ensemble,
        settings,
        {f"test_{k}": v for k, v in summary["ensemble"].items()},
        {"features_from": summary["features_from"]},
        run_name="train-protocol",
    )
    set_alias(settings.model_name, CHAMPION, version)
    summary["model_version"] = version
    out = level_dir(4) / "train"
    write_json(out / "metrics.json", summary)
    write_json(out / "config.json", dump_settings(settings))
    return summary
