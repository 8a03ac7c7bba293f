"""A/B testing champion vs challenger: stable split, delayed labels, a fixed-horizon test.

The design, in the order a real experiment runs:

1. **Split.** Each customer goes to one arm by a stable hash of ``salt:customer_id`` (SHA-256, not
   Python's per-process ``hash``), so every replica of the scoring service agrees and a customer
   never flips between models. :class:`~level4_fraud.serving.traffic.TrafficSplit` is what the
   scoring service calls.
2. **Plan.** Before any data, :func:`required_sample_size` says how many labelled fraud cases each
   arm needs to detect the minimum effect worth shipping (two-proportion power analysis,
   ``statsmodels``).
3. **Collect.** The metric is the *fraud catch rate* (blocked frauds / frauds). A transaction's
   label is known only ``label_delay_days`` after it happened (chargebacks arrive late), so on day
   ``d`` only outcomes up to ``d - delay`` count.
4. **Decide once.** On the first day both arms hold the planned number of labelled frauds, one
   two-proportion z-test decides. Looking every day and stopping at the first p < alpha
   ("peeking") inflates false wins; :func:`operating_characteristics` measures both so the
   difference shows in numbers.

The traffic here is simulated with a known true catch rate per arm, which is what lets the tests
check that a no-difference experiment does not produce a false win and that a real difference is
found with the planned power.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import numpy as np

from level4_fraud.serving.traffic import TrafficSplit

Decision = Literal["challenger_wins", "champion_wins", "no_difference", "undecided"]


@functools.cache  # pure; operating_characteristics plans the same experiment hundreds of times
def required_sample_size(
    baseline_rate: float,
    minimum_effect: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> int:
    """Labelled frauds needed in the champion arm to detect ``baseline + minimum_effect``.

    Two-sided two-proportion z-test via Cohen's h (``statsmodels``); the challenger arm needs
    ``ratio`` times as many.
    """
    if not 0 < baseline_rate < 1 or not 0 < baseline_rate + minimum_effect < 1:
        raise ValueError("rates must lie strictly between 0 and 1")
    if minimum_effect == 0:
        raise ValueError("minimum_effect must be non-zero")
    # Imported here so the serving image can use TrafficSplit without statsmodels.
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    effect = abs(proportion_effectsize(baseline_rate + minimum_effect, baseline_rate))
    n = NormalIndPower().solve_power(
        effect_size=effect, alpha=alpha, power=power, ratio=ratio, alternative="two-sided"
    )
    return int(np.ceil(n))


def two_proportion_test(
    caught_champion: int, n_champion: int, caught_challenger: int, n_challenger: int
) -> tuple[float, float]:
    """(z, two-sided p-value) of challenger rate minus champion rate; (0, 1) if undefined."""
    from statsmodels.stats.proportion import proportions_ztest

    if min(n_champion, n_challenger) == 0:
        return 0.0, 1.0
    total = caught_champion + caught_challenger
    if total in (0, n_champion + n_challenger):  # both rates 0 or both 1: no evidence either way
        return 0.0, 1.0
    z, p = proportions_ztest(
        [caught_challenger, caught_champion], [n_challenger, n_champion], alternative="two-sided"
    )
    return float(z), float(p)


@dataclass
class ExperimentSettings:
    """Everything that defines one simulated experiment."""

    n_customers: int = 5000
    transactions_per_day: int = 10_000
    fraud_rate: float = 0.01
    champion_catch_rate: float = 0.60
    challenger_catch_rate: float = 0.60
    minimum_effect: float = 0.08
    alpha: float = 0.05
    power: float = 0.8
    challenger_share: float = 0.5
    label_delay_days: int = 7
    max_days: int = 60
    salt: str = "ab-1"


@dataclass
class ExperimentReport:
    """What the experiment concluded, and when."""

    decision: Decision
    decision_day: int | None  # calendar day the test ran (traffic day + label delay)
    traffic_days: int | None  # days of traffic whose labels the decision used
    required_per_arm: int
    frauds_champion: int
    frauds_challenger: int
    catch_rate_champion: float
    catch_rate_challenger: float
    z: float
    p_value: float
    peeking_decision: Decision  # what stopping at the first daily p < alpha would have said
    peeking_day: int | None
    daily: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """Plain data for JSON."""
        return asdict(self)


def _decide(z: float, p: float, alpha: float) -> Decision:
    if p >= alpha:
        return "no_difference"
    return "challenger_wins" if z > 0 else "champion_wins"


def simulate_outcomes(
    settings: ExperimentSettings, rng: np.random.Generator, split: TrafficSplit | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulated labelled fraud outcomes: (day, is_challenger, caught) per fraudulent transaction.

    Only fraudulent transactions matter to the catch rate, so only they are drawn: a Poisson number
    per day, each from a random customer, whose arm comes from the real hash split and whose catch
    is a Bernoulli draw with the arm's true catch rate.
    """
    split = split or TrafficSplit(settings.challenger_share, settings.salt)
    customer_arm = split.arms(range(settings.n_customers))
    frauds_per_day = rng.poisson(
        settings.transactions_per_day * settings.fraud_rate, size=settings.max_days
    )
    day = np.repeat(np.arange(settings.max_days), frauds_per_day)
    customers = rng.integers(0, settings.n_customers, size=day.size)
    is_challenger = customer_arm[customers]
    catch_rate = np.where(
        is_challenger, settings.challenger_catch_rate, settings.champion_catch_rate
    )
    caught = rng.random(day.size) < catch_rate
    return day, is_challenger, caught


def run_experiment(
    settings: ExperimentSettings,
    outcomes: tuple[np.ndarray, np.ndarray, np.ndarray],
    keep_daily: bool = True,
) -> ExperimentReport:
    """Replay the experiment day by day on ``outcomes`` with delayed labels; decide once.

    On calendar day ``t`` the labels of traffic days ``< t - label_delay_days + 1`` are known. The
    fixed-horizon decision is taken on the first day both arms reach the planned sample size; the
    peeking decision (reported for contrast) on the first day any daily test has p < alpha.
    """
    day, is_challenger, caught = outcomes
    ratio = settings.challenger_share / max(1e-9, 1 - settings.challenger_share)
    n_needed = required_sample_size(
        settings.champion_catch_rate, settings.minimum_effect, settings.alpha, settings.power, ratio
    )
    n_needed_challenger = int(np.ceil(n_needed * ratio))
    # Cumulative counts per traffic day, per arm.
    days = settings.max_days
    n_ch = np.bincount(day[~is_challenger], minlength=days).cumsum()
    n_cl = np.bincount(day[is_challenger], minlength=days).cumsum()
    c_ch = np.bincount(day[~is_challenger & caught], minlength=days).cumsum()
    c_cl = np.bincount(day[is_challenger & caught], minlength=days).cumsum()

    daily: list[dict[str, float]] = []
    decision: Decision = "undecided"
    decision_day = traffic_days = None
    z_final, p_final = 0.0, 1.0
    peeking: Decision = "no_difference"
    peeking_day = None
    final_counts = (0, 0, 0, 0)
    for calendar_day in range(settings.label_delay_days, days + settings.label_delay_days):
        labelled_through = calendar_day - settings.label_delay_days  # last traffic day with labels
        if labelled_through >= days:
            break
        counts = (
            int(c_ch[labelled_through]),
            int(n_ch[labelled_through]),
            int(c_cl[labelled_through]),
            int(n_cl[labelled_through]),
        )
        z, p = two_proportion_test(*counts)
        if keep_daily:
            daily.append(
                {
                    "day": calendar_day,
                    "labelled_frauds_champion": counts[1],
                    "labelled_frauds_challenger": counts[3],
                    "p_value": p,
                }
            )
        if peeking_day is None and p < settings.alpha:
            peeking, peeking_day = _decide(z, p, settings.alpha), calendar_day
        if decision_day is None and counts[1] >= n_needed and counts[3] >= n_needed_challenger:
            decision = _decide(z, p, settings.alpha)
            decision_day, traffic_days = calendar_day, labelled_through + 1
            z_final, p_final, final_counts = z, p, counts
            if not keep_daily and peeking_day is not None:
                break
    if decision_day is None:  # ran out of traffic before the planned sample size
        final_counts = (int(c_ch[-1]), int(n_ch[-1]), int(c_cl[-1]), int(n_cl[-1]))
        z_final, p_final = two_proportion_test(*final_counts)
    return ExperimentReport(
        decision=decision,
        decision_day=decision_day,
        traffic_days=traffic_days,
        required_per_arm=n_needed,
        frauds_champion=final_counts[1],
        frauds_challenger=final_counts[3],
        catch_rate_champion=final_counts[0] / max(1, final_counts[1]),
        catch_rate_challenger=final_counts[2] / max(1, final_counts[3]),
        z=z_final,
        p_value=p_final,
        peeking_decision=peeking,
        peeking_day=peeking_day,
        daily=daily,
    )


def operating_characteristics(
    settings: ExperimentSettings, true_effect: float, n_experiments: int = 400, seed: int = 0
) -> dict[str, float]:
    """Run many independent experiments; return how often each design declares a challenger win.

    With ``true_effect == 0`` the win rate is the false-win rate (should be about alpha / 2 for a
    two-sided test); with the planned effect it is the power (should be about ``settings.power``).
    Each experiment uses its own salt, so the customer split differs too.
    """
    rng = np.random.default_rng(seed)
    wins = peeking_wins = decided = 0
    days_to_decision: list[int] = []
    for i in range(n_experiments):
        one = replace(
            settings,
            challenger_catch_rate=settings.champion_catch_rate + true_effect,
            salt=f"{settings.salt}-{seed}-{i}",
        )
        report = run_experiment(one, simulate_outcomes(one, rng), keep_daily=False)
        wins += report.decision == "challenger_wins"
        peeking_wins += report.peeking_decision == "challenger_wins"
        if report.decision_day is not None:
            decided += 1
            days_to_decision.append(report.decision_day)
    return {
        "win_rate": wins / n_experiments,
        "peeking_win_rate": peeking_wins / n_experiments,
        "decided_fraction": decided / n_experiments,
        "median_decision_day": float(np.median(days_to_decision)) if days_to_decision else -1.0,
    }


def ab_bench(n_experiments: int = 400, seed: int = 0) -> dict[str, object]:
    """False-win rate (no true difference) and power (true difference = the planned effect).

    Returns the two benchmark keys ``ab_false_win_rate`` and ``ab_power`` plus the peeking
    contrast and one example report for the README.
    """
    settings = ExperimentSettings()
    null = operating_characteristics(settings, 0.0, n_experiments, seed)
    alt = operating_characteristics(settings, settings.minimum_effect, n_experiments, seed + 1)
    example_settings = ExperimentSettings(
        challenger_catch_rate=settings.champion_catch_rate + settings.minimum_effect
    )
    example = run_experiment(
        example_settings, simulate_outcomes(example_settings, np.random.default_rng(seed))
    )
    return {
        "ab_false_win_rate": null["win_rate"],
        "ab_power": alt["win_rate"],
        "ab_peeking_false_win_rate": null["peeking_win_rate"],
        "ab_peeking_power": alt["peeking_win_rate"],
        "ab_median_decision_day": alt["median_decision_day"],
        "ab_required_per_arm": example.required_per_arm,
        "example": example.to_dict(),
        "settings": asdict(settings),
    }
