"""An A/B test that can fail: real models on simulated traffic where frauds cluster by card.

:mod:`level4_fraud.experiments.abtest` plans and decides an experiment on outcomes drawn
independently per transaction. Real frauds are not independent: a leaked card (scenario 3) or a
tested card (card testing) carries many frauds, and a model that misses one of them tends to miss
them all. The experiment randomises **customers** (cards), so the unit of randomisation is the card
while the naive test counts transactions: it treats ten missed payments of one card as ten
independent pieces of evidence and finds differences that are not there.

This module measures that on the simulator:

1. simulate a world with the scenarios and card testing; train a **champion** (LightGBM, before
   the pattern) and a **challenger** (LightGBM on later data, pattern included); score the same
   experiment days with both; each model blocks its top ``block_share`` of payments (the same
   alert budget), a fraud is *caught* when its model blocks it;
2. run many experiments, each a fresh customer split
   (:class:`~level4_fraud.serving.traffic.TrafficSplit` with its own salt): the champion arm's
   frauds are judged by the champion, the challenger arm's by the challenger (A/B), or by the
   champion too (**A/A**, no true difference by construction);
3. on each, the naive per-transaction two-proportion z-test and the **cluster-robust** test: the
   difference in catch rates as a linear probability model with standard errors clustered by
   customer (``statsmodels`` OLS, ``cov_type="cluster"``).

A/A false-win rate (a "challenger wins" at alpha = 0.05, two-sided: 0.025 expected) shows the
naive test failing beside the correct one; A/B win rate is the power on real models.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from level4_fraud.experiments.abtest import two_proportion_test
from level4_fraud.serving.traffic import TrafficSplit

log = logging.getLogger(__name__)


@dataclass
class ClusteredABSettings:
    """The simulated world, the two models' windows and the experiments."""

    seed: int = 0
    n_customers: int = 2000
    n_terminals: int = 4000
    new_pattern_day: int = 50
    champion_train: tuple[int, int] = (20, 43)  # days [start, stop): before the pattern
    challenger_train: tuple[int, int] = (36, 60)  # includes 10 pattern days
    experiment_days: tuple[int, int] = (67, 81)  # after both models' data and the label delay
    block_share: float = 0.01
    alpha: float = 0.05
    n_experiments: int = 400
    lightgbm_estimators: int = 100


@dataclass
class ScoredTraffic:
    """The experiment days' frauds with both models' decisions."""

    customer_id: np.ndarray  # one entry per fraudulent payment
    caught_champion: np.ndarray
    caught_challenger: np.ndarray
    scenario: np.ndarray
    n_payments: int


def score_traffic(settings: ClusteredABSettings) -> ScoredTraffic:
    """Simulate, train both models, and decide every experiment-day payment with each."""
    from level4_fraud.config import LightGBMConfig, SimulationConfig
    from level4_fraud.data.features import FEATURES, LABEL, as_matrix, features_frame
    from level4_fraud.data.simulate import TransactionSimulator
    from level4_fraud.models.trees import train_lightgbm

    s = settings
    stop = s.experiment_days[1]
    sim = TransactionSimulator(
        SimulationConfig(
            seed=s.seed,
            n_customers=s.n_customers,
            n_terminals=s.n_terminals,
            n_days=stop,
            new_pattern_day=s.new_pattern_day,
        )
    )
    log.info("A/B: simulating %d days and building features", stop)
    frame = features_frame(sim, 0, stop)
    day = frame["tx_time_days"].to_numpy()
    X, y = as_matrix(frame[FEATURES]), frame[LABEL].to_numpy()

    def window(bounds: tuple[int, int]) -> np.ndarray:
        return (day >= bounds[0]) & (day < bounds[1])

    config = LightGBMConfig(n_estimators=s.lightgbm_estimators, seed=s.seed)
    log.info("A/B: training the champion and the challenger")
    models = {
        name: train_lightgbm(X[window(bounds)], y[window(bounds)], config)
        for name, bounds in (("champion", s.champion_train), ("challenger", s.challenger_train))
    }
    experiment = window(s.experiment_days)
    fraud = experiment & (y == 1)
    caught = {}
    for name, model in models.items():
        scores = model.predict_proba(X[experiment])[:, 1]
        # Same alert budget for both: each blocks its top block_share of the experiment traffic.
        threshold = np.quantile(scores, 1 - s.block_share)
        caught[name] = (model.predict_proba(X[fraud])[:, 1] > threshold).astype(np.int8)
    return ScoredTraffic(
        customer_id=frame["customer_id"].to_numpy()[fraud],
        caught_champion=caught["champion"],
        caught_challenger=caught["challenger"],
        scenario=frame["tx_fraud_scenario"].to_numpy()[fraud],
        n_payments=int(experiment.sum()),
    )


def cluster_robust_test(
    caught: np.ndarray, is_challenger: np.ndarray, customer_id: np.ndarray
) -> tuple[float, float]:
    """(difference in catch rates, two-sided p) with standard errors clustered by customer."""
    import statsmodels.api as sm

    design = sm.add_constant(is_challenger.astype(float))
    fit = sm.OLS(caught.astype(float), design).fit(
        cov_type="cluster", cov_kwds={"groups": customer_id}
    )
    return float(fit.params[1]), float(fit.pvalues[1])


def run_experiments(
    traffic: ScoredTraffic, settings: ClusteredABSettings, true_difference: bool
) -> dict[str, float]:
    """Many customer splits of the same traffic; how often each test declares a challenger win.

    With ``true_difference=False`` both arms are judged by the champion (A/A).
    """
    challenger_catch = traffic.caught_challenger if true_difference else traffic.caught_champion
    customers = np.unique(traffic.customer_id)
    index = np.searchsorted(customers, traffic.customer_id)
    naive_wins = cluster_wins = 0
    for i in range(settings.n_experiments):
        split = TrafficSplit(0.5, f"clustered-{settings.seed}-{int(true_difference)}-{i}")
        arm = split.arms(customers.tolist())[index]
        caught = np.where(arm, challenger_catch, traffic.caught_champion)
        z, p = two_proportion_test(
            int(caught[~arm].sum()), int((~arm).sum()), int(caught[arm].sum()), int(arm.sum())
        )
        naive_wins += p < settings.alpha and z > 0
        diff, p_cluster = cluster_robust_test(caught, arm, traffic.customer_id)
        cluster_wins += p_cluster < settings.alpha and diff > 0
    n = settings.n_experiments
    return {"naive_win_rate": naive_wins / n, "cluster_win_rate": cluster_wins / n}


def clustered_ab_report(settings: ClusteredABSettings | None = None) -> dict[str, Any]:
    """A/A false-win rates and A/B power of the naive and the cluster-robust tests."""
    settings = settings or ClusteredABSettings()
    traffic = score_traffic(settings)
    per_card = np.bincount(np.unique(traffic.customer_id, return_inverse=True)[1])
    log.info("A/B: %d experiments A/A and A/B", settings.n_experiments)
    null = run_experiments(traffic, settings, true_difference=False)
    alt = run_experiments(traffic, settings, true_difference=True)
    return {
        "ab_naive_false_win_rate": null["naive_win_rate"],
        "ab_cluster_false_win_rate": null["cluster_win_rate"],
        "ab_naive_power": alt["naive_win_rate"],
        "ab_cluster_power": alt["cluster_win_rate"],
        "frauds": int(len(traffic.customer_id)),
        "fraud_cards": int(len(per_card)),
        "frauds_per_card_mean": float(per_card.mean()),
        "frauds_per_card_max": int(per_card.max()),
        "catch_rate_champion": float(traffic.caught_champion.mean()),
        "catch_rate_challenger": float(traffic.caught_challenger.mean()),
        "payments": traffic.n_payments,
        "settings": asdict(settings),
    }
