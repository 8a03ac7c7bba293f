"""The model choice rule (``compare.choose_family``) on per-fold scores built by hand."""

from __future__ import annotations

import numpy as np

from level2_churn.compare import choose_family
from level2_churn.settings import SelectionSettings

RULE = SelectionSettings()  # lr < lgbm_default < lgbm_tuned < mlp; baselines lr, lgbm_default
FOLDS = 10
NOISE = np.random.default_rng(0).normal(0, 0.02, FOLDS)  # fold difficulty, shared by families


def _scores(level: float, jitter: float = 0.002, seed: int = 1) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [
        {"ap": float(level + n + e), "auc": 0.8}
        for n, e in zip(NOISE, rng.normal(0, jitter, FOLDS), strict=True)
    ]


def _choose(levels: dict[str, float]) -> dict:
    per_fold = {f: _scores(v, seed=i) for i, (f, v) in enumerate(levels.items())}
    return choose_family(per_fold, RULE, n_train=4000, n_test=1000)


def test_a_clear_winner_is_chosen_and_says_why() -> None:
    chosen = _choose({"lr": 0.60, "lgbm_default": 0.62, "lgbm_tuned": 0.65, "mlp": 0.59})
    assert chosen["best_family"] == chosen["chosen_family"] == "lgbm_tuned"
    assert "beats every simpler family" in chosen["reason"]
    assert all(chosen["best_minus"][f]["p_value"] < 0.05 for f in ("lr", "lgbm_default"))


def test_a_best_mean_within_noise_keeps_the_simpler_family() -> None:
    chosen = _choose({"lr": 0.650, "lgbm_default": 0.640, "lgbm_tuned": 0.651, "mlp": 0.64})
    assert chosen["best_family"] == "lgbm_tuned" and chosen["chosen_family"] == "lr"
    assert "does not beat the simpler lr" in chosen["reason"]
    assert not chosen["champion_below_best_baseline"]


def test_the_simplest_family_not_beaten_is_chosen() -> None:
    # Tuning beats LR clearly but not the fixed LightGBM defaults: the defaults are kept.
    chosen = _choose({"lr": 0.60, "lgbm_default": 0.6495, "lgbm_tuned": 0.650, "mlp": 0.61})
    assert chosen["best_family"] == "lgbm_tuned" and chosen["chosen_family"] == "lgbm_default"
    assert chosen["best_baseline"] == "lgbm_default"
    assert chosen["champion_minus_best_baseline"]["ap"]["mean"] == 0.0


def test_ties_go_to_the_simpler_family() -> None:
    per_fold = {f: _scores(0.6, seed=1) for f in RULE.candidates}
    chosen = choose_family(per_fold, RULE, n_train=4000, n_test=1000)
    assert chosen["best_family"] == chosen["chosen_family"] == "lr"
