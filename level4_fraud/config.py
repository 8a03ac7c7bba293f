"""Level 4's settings: ONE ``config.yaml`` in this folder, a section per concern, overridden by
``LEVEL4_*`` variables.

``LEVEL4_SIMULATION__N_CUSTOMERS=500`` shrinks the world, ``LEVEL4_RETRAIN__MARGIN=0.05`` makes the
promotion gate stricter, ``LEVEL4_INDUSTRIAL__DDP__EPOCHS=1`` shortens part 2 (``__`` between
nested fields). Every settings class of the level lives here, so loading the settings imports
neither torch nor the simulator (``python -c "import level4_fraud.config"`` stays light; a test
checks it), and the Python defaults are the YAML's values (a test checks that too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from ml_common.config import LevelSettings, load_settings, settings_config
from ml_common.matrix import MatrixSettings
from ml_common.stats import N_RESAMPLES

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")


DriftKind = Literal[
    "card_testing",
    "terminal_wave",
    "account_takeover",
    "amount_shift",
    "seasonal",
    "new_merchants",
]
FRAUD_KINDS: tuple[str, ...] = ("card_testing", "terminal_wave", "account_takeover", "amount_shift")
HARMLESS_KINDS: tuple[str, ...] = ("seasonal", "new_merchants")


class DriftEvent(BaseModel):
    """One change of the world from ``start_day`` for ``duration_days`` (``None``: to the end).

    ``volume`` scales the kind's default intensity (1 = the default; ½ and ¼ are the matrix's
    fainter cases). The kinds (:mod:`level4_fraud.data.simulate` says how each is drawn):

    - ``card_testing`` (scenario 4): night bursts of tiny payments on tested cards; volume 1 is
      6 tested cards a day per 5,000 customers;
    - ``terminal_wave`` (5): extra terminals compromised each day (volume 1: 4 × the usual
      ``n_compromised_terminals``, so 5 × as many in all); their payments are fraud at ordinary
      amounts;
    - ``account_takeover`` (6): extra customers' accounts taken over each day (volume 1:
      ``n_compromised_customers`` more); the fraudster adds about two daytime payments a day at
      terminals anywhere on the map at 1.5–3 × the customer's usual amount for ``takeover_days``;
    - ``amount_shift`` (7): extra leaked cards each day (volume 1: 4 × ``n_compromised_customers``)
      whose stolen payments keep ordinary amounts (× 1–1.5, not × 5): fraud in the legitimate range;
    - ``seasonal`` (harmless): customers spend more (see ``seasonal_*``; volume scales the rise);
    - ``new_merchants`` (harmless): a new merchant group (5 % of terminals) takes 20 % × volume of
      the payments of customers near it, at half the usual amount.
    """

    kind: DriftKind
    start_day: int = Field(..., ge=0)
    volume: float = Field(1.0, gt=0)
    duration_days: int | None = Field(None, ge=1)

    @property
    def is_fraud(self) -> bool:
        """Whether the event adds fraud (an alarm inside it is a detection)."""
        return self.kind in FRAUD_KINDS

    def active(self, day: int) -> bool:
        """Whether new draws of the event happen on ``day``."""
        end = None if self.duration_days is None else self.start_day + self.duration_days
        return day >= self.start_day and (end is None or day < end)


class SimulationConfig(BaseModel):
    """Size, seed and scenario knobs of the simulated world."""

    seed: int = 0
    n_customers: int = Field(5000, ge=1)
    n_terminals: int = Field(10000, ge=1)
    n_days: int = Field(150, ge=1)
    start_date: str = "2026-04-01"
    radius: float = Field(5.0, gt=0)
    amount_threshold: float = 220.0
    n_compromised_terminals: int = Field(2, ge=0)
    terminal_compromise_days: int = Field(28, ge=1)
    n_compromised_customers: int = Field(3, ge=0)
    customer_compromise_days: int = Field(14, ge=1)
    customer_fraud_share: float = Field(1 / 3, ge=0, le=1)
    customer_fraud_multiplier: float = 5.0
    new_pattern_day: int | None = None
    # A fraction (e.g. 1.5) means 1 card a day plus a second one on half the days: the volume
    # knob of the scenario matrix. Whole numbers give exactly that many cards every day.
    new_pattern_cards_per_day: float = Field(6, ge=0)
    new_pattern_burst: tuple[int, int] = (6, 14)
    new_pattern_amount: tuple[float, float] = (0.5, 5.0)
    seasonal_day: int | None = None
    seasonal_amount_factor: float = Field(1.3, gt=0)
    seasonal_tx_factor: float = Field(1.2, gt=0)
    seasonal_ramp_days: int = Field(14, ge=1)
    takeover_days: int = Field(7, ge=1, description="days an account takeover lasts")
    drift_events: list[DriftEvent] = Field(
        default_factory=list,
        description="changes of the world (kind, start day, volume, duration); "
        "new_pattern_day and seasonal_day are shorthands for one card_testing / seasonal event",
    )

    def events(self) -> list[DriftEvent]:
        """Every drift event: the explicit list plus the two shorthand switches."""
        events = list(self.drift_events)
        if self.new_pattern_day is not None:
            volume = self.new_pattern_cards_per_day / (6.0 * self.n_customers / 5000)
            events.append(
                DriftEvent(kind="card_testing", start_day=self.new_pattern_day, volume=volume)
            )
        if self.seasonal_day is not None:
            events.append(DriftEvent(kind="seasonal", start_day=self.seasonal_day))
        return events

    def event_span(self, event: DriftEvent) -> tuple[int, int]:
        """``[first, last]`` day on which the event's effects show (its fraud outlives its last
        draw: a terminal compromised on the last day stays so ``terminal_compromise_days``)."""
        if event.duration_days is None:
            return event.start_day, max(event.start_day, self.n_days - 1)
        tail = {
            "terminal_wave": self.terminal_compromise_days - 1,
            "account_takeover": self.takeover_days - 1,
            "amount_shift": self.customer_compromise_days - 1,
        }.get(event.kind, 0)
        return event.start_day, event.start_day + event.duration_days - 1 + tail


class ProtocolConfig(BaseModel):
    """The handbook's evaluation protocol: train period, feedback delay, test week."""

    train_start_day: int = 37
    train_days: int = Field(35, ge=1)
    delay_days: int = Field(7, ge=0)
    test_days: int = Field(7, ge=1)
    prequential_folds: int = Field(2, ge=1)
    top_k: int = Field(100, ge=1)


class EnsembleConfig(BaseModel):
    """Member weights of the ensemble; a candidate set is chosen by prequential validation."""

    # The default is what prequential validation picked on the default simulation (bench
    # protocol.json): the isolation forest adds no AP there, so it only serves the drift monitor
    # (and costs ~20 ms per single-row score when weighted in).
    weights: dict[str, float] = {"lightgbm": 0.5, "fraudnet": 0.5, "isolation_forest": 0.0}
    candidates: list[dict[str, float]] = [
        {"lightgbm": 1.0, "fraudnet": 0.0, "isolation_forest": 0.0},
        {"lightgbm": 0.5, "fraudnet": 0.5, "isolation_forest": 0.0},
        {"lightgbm": 0.5, "fraudnet": 0.4, "isolation_forest": 0.1},
    ]
    isolation_trees: int = 100


class MonitorConfig(BaseModel):
    """Drift monitor: anomaly-tail test (the alarm), feature and score drift (reported)."""

    alarm: Literal["cusum", "tail_ratio"] = Field(
        "cusum", description="cusum: Page's CUSUM on the tail rate; tail_ratio: the old 2-of-3 rule"
    )
    cusum_k: float = Field(0.5, gt=0, description="half the standardised shift to detect fastest")
    false_alarm_budget_days: float = Field(
        1000, gt=1, description="mean stable days between false alarms the CUSUM is set for"
    )
    harmless_tail_change: float = Field(
        0.3, ge=0, description="relative rise of the tail rate that must not page (the tolerance)"
    )
    card_alarm: bool = Field(
        True, description="also watch cards with several tail payments a day (Poisson CUSUM)"
    )
    card_tail_payments: int = Field(
        3, ge=2, description="tail payments on one card in one day that make it a suspect card"
    )
    card_shift_per_day: float = Field(
        0.5, gt=0, description="rise of suspect cards a day the card CUSUM detects fastest"
    )
    terminal_alarm: bool = Field(
        True, description="also watch terminals with several tail payments a day (Poisson CUSUM)"
    )
    terminal_tail_payments: int = Field(
        3, ge=2, description="tail payments at one terminal in one day that make it suspect"
    )
    terminal_shift_per_day: float = Field(
        0.5, gt=0, description="rise of suspect terminals a day the terminal CUSUM detects fastest"
    )
    label_alarm: bool = Field(
        True, description="also watch delayed labels: precision at the top k and fraud it misses"
    )
    label_reference_days: int = Field(
        7, ge=3, description="the champion's first labelled days: the label tests' reference"
    )
    label_top_k: int = Field(100, ge=1, description="the daily alert queue the label tests watch")
    label_tolerance: float = Field(
        0.3, ge=0, description="relative movement of the label values that must not page"
    )
    reference_days: int = Field(14, ge=2, description="threshold days + calibration days")
    tail_quantile: float = Field(0.995, gt=0.5, lt=1)
    alarm_ratio: float = Field(1.5, gt=1)
    alarm_p_value: float = Field(1e-3, gt=0, lt=1)
    signal_days: int = Field(2, ge=1, description="signals needed within window_days")
    window_days: int = Field(3, ge=1)
    psi_bins: int = Field(10, ge=2)
    feature_psi_warn: float = 0.2
    performance_drop: float = Field(0.2, description="alert when delayed-label AP falls this much")


class RetrainConfig(BaseModel):
    """The retraining flow and its promotion gate."""

    train_days: int = Field(21, ge=1)
    holdout_days: int = Field(3, ge=1)
    margin: float = Field(0.02, ge=0, description="AP the challenger must add to be promoted")
    schedule_days: int = Field(28, ge=1, description="retrain on a schedule every N days")
    after_alarm_every_days: int = Field(3, ge=1)
    metric: str = "ap"


class ReplayConfig(BaseModel):
    """The replay story's calendar."""

    first_train_day: int = 45
    first_train_days: int = 28
    monitor_start_day: int = 80


class ServeConfig(BaseModel):
    """The scoring service."""

    host: str = "127.0.0.1"
    port: int = 0
    decision_threshold: float = Field(0.5, ge=0, le=1)
    load_test_requests: int = Field(2000, ge=10)
    workers: int = Field(2, ge=1, description="uvicorn worker processes of `serve`")
    concurrent_requests: int = Field(500, ge=1, description="requests in flight at once (bench)")


class ScenarioMatrixConfig(BaseModel):
    """The scenario matrix (``scenarios.py``): its axes and the smaller world each case replays.

    Fraud cases: ``kinds`` × ``volumes`` × ``seasonal`` × seeds, each a world with one fraud
    event from ``drift_day``; controls: per seed, every harmless-only world of ``controls``
    (``none``: nothing changes; ``seasonal``; ``new_merchants``; ``both``). The monitor's settings
    are chosen on ``tuning_seeds`` (``scenarios --seeds tuning``); the figures are reported on
    ``eval_seeds``, which tuning never sees (a test checks the two are disjoint).
    """

    kinds: list[DriftKind] = ["card_testing", "terminal_wave", "account_takeover", "amount_shift"]
    controls: list[Literal["none", "seasonal", "new_merchants", "both"]] = [
        "none",
        "seasonal",
        "new_merchants",
        "both",
    ]
    tuning_seeds: list[int] = [0, 1]
    eval_seeds: list[int] = [10, 11, 12, 13]
    drift_day: int = 72
    volumes: list[float] = [1.0, 0.5, 0.25]
    seasonal: list[bool] = [True, False]
    detect_within_days: int = Field(7, ge=1)
    world_customers: int = Field(2000, ge=100)
    world_terminals: int = Field(4000, ge=100)
    n_days: int = Field(100, ge=30)
    seasonal_day: int = 60
    new_merchants_day: int = 64
    first_train_day: int = 31
    first_train_days: int = 21
    monitor_start_day: int = 60
    retrain_train_days: int = 14
    torch_epochs: int = 2
    lightgbm_estimators: int = 60
    matrix: MatrixSettings = MatrixSettings()  # the shared runner: where and how wide


class HandbookConfig(BaseModel):
    """``python -m level4_fraud handbook``: the Fraud Detection Handbook's exact protocol
    (7 days train, 7 days delay, 7 days test, known-compromised cards removed from each test day)
    and its baseline models beside ours, on one window of the simulation."""

    train_start_day: int = Field(65, ge=0)
    train_days: int = Field(7, ge=1)
    delay_days: int = Field(7, ge=0)
    test_days: int = Field(7, ge=1)
    long_train_days: int | None = Field(
        35, ge=1, description="ours again, trained on this many days ending where the 7 end"
    )
    forest_trees: int = Field(100, ge=1)  # scikit-learn's default, as the handbook uses
    boosting_trees: int = Field(100, ge=1)  # XGBoost's default
    bootstrap: int = Field(
        N_RESAMPLES, ge=0, description="card-level bootstrap resamples of AP (0: no interval)"
    )
    n_jobs: int = Field(1, ge=1)
    top_k: int = Field(100, ge=1)


class TorchConfig(BaseModel):
    """Training knobs of :class:`FraudNet`."""

    hidden: tuple[int, ...] = (128, 64)
    dropout: float = Field(0.1, ge=0, lt=1)
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(2048, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    pos_weight: float | None = Field(None, description="None: sqrt(negatives / positives)")
    seed: int = 0
    device: str | None = None
    num_threads: int | None = Field(
        None, ge=1, description="CPU threads for torch (None: leave torch's setting)"
    )


class LightGBMConfig(BaseModel):
    """LightGBM baseline knobs."""

    n_estimators: int = 200
    learning_rate: float = 0.08
    num_leaves: int = 31
    min_child_samples: int = 50
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    seed: int = 0
    n_jobs: int = Field(1, ge=1, description="threads; >1 crawls on a busy 2-core machine")


class WorldSettings(BaseModel):
    """The simulated world and its time line."""

    n_customers: int = Field(2000, ge=10)
    n_terminals: int = Field(4000, ge=10)
    warmup_days: int = Field(30, ge=0)
    train_days: int = Field(21, ge=1)
    delay_days: int = Field(7, ge=0)
    test_days: int = Field(7, ge=1)
    new_pattern_day: int = Field(75, ge=1)
    adapt_days: int = Field(7, ge=1)


class ModelSettings(BaseModel):
    """The deployed network (passed to part 1's ``TorchConfig``)."""

    hidden: tuple[int, ...] = (128, 64)
    dropout: float = 0.1
    epochs: int = 4
    batch_size: int = 1024
    lr: float = 2e-3


class DDPSettings(BaseModel):
    """DDP comparison: the same run with 1 and ``nproc`` processes (dropout off to compare)."""

    nproc: int = Field(2, ge=2)
    epochs: int = Field(2, ge=1)
    batch_size: int = 1024
    score_tolerance: float = 5e-3  # max |p_1proc - p_Nproc| over the test rows
    ap_tolerance: float = 0.005


class QuantSettings(BaseModel):
    """Scoring engines: batch size and seconds of measurement per engine."""

    batch_size: int = 1024
    seconds: float = 1.5


class DistillSettings(BaseModel):
    """The student and the teacher ensemble's weights."""

    hidden: tuple[int, ...] = (16,)
    hard_weight: float = 0.2
    calibrate_teacher: bool = True
    epochs: int = 20
    lr: float = 5e-3
    teacher_weights: dict[str, float] = {"fraudnet": 0.4, "lightgbm": 0.5, "isolation_forest": 0.1}


class AdaptSettings(BaseModel):
    """Adapting to the new fraud pattern: LoRA rank and both training budgets."""

    rank: int = Field(4, ge=1)
    alpha: float = 8.0
    epochs: int = 4
    lora_lr: float = 5e-3
    finetune_lr: float = 1e-3
    batch_size: int = 512


class IndustrialSettings(BaseModel):
    """Part 2 (``python -m level4_fraud industrial``): its own smaller world and every technique."""

    seed: int = 0
    device: str | None = Field(None, description="training device; None: cuda when present")
    world: WorldSettings = WorldSettings()
    model: ModelSettings = ModelSettings()
    ddp: DDPSettings = DDPSettings()
    quant: QuantSettings = QuantSettings()
    distill: DistillSettings = DistillSettings()
    adapt: AdaptSettings = AdaptSettings()
    ab_experiments: int = Field(400, ge=20)

    def net_config(self, **update: object) -> TorchConfig:
        """The deployed FraudNet's :class:`TorchConfig` (``model`` section, seed, device)."""
        m = self.model
        return TorchConfig(
            hidden=m.hidden,
            dropout=m.dropout,
            epochs=m.epochs,
            batch_size=m.batch_size,
            lr=m.lr,
            seed=self.seed,
            device=self.device,
        ).model_copy(update=update)


class Level4Settings(LevelSettings):
    """Everything level 4 reads from ``config.yaml``."""

    model_config = settings_config("LEVEL4_")

    simulation: SimulationConfig = SimulationConfig(seasonal_day=100, new_pattern_day=120)
    protocol: ProtocolConfig = ProtocolConfig()
    torch: TorchConfig = TorchConfig(num_threads=1)
    lightgbm: LightGBMConfig = LightGBMConfig()
    ensemble: EnsembleConfig = EnsembleConfig()
    monitor: MonitorConfig = MonitorConfig()
    retrain: RetrainConfig = RetrainConfig()
    replay: ReplayConfig = ReplayConfig()
    serve: ServeConfig = ServeConfig()
    scenarios: ScenarioMatrixConfig = ScenarioMatrixConfig()
    handbook: HandbookConfig = HandbookConfig()
    industrial: IndustrialSettings = IndustrialSettings()
    experiment: str = "level4_fraud"
    model_name: str = "level4-fraud"
    use_feast: bool = True


def load_config(path: str | Path | None = None, **overrides: object) -> Level4Settings:
    """The level's settings from ``path`` (default: the packaged ``config.yaml``)."""
    return load_settings(Level4Settings, path or DEFAULT_CONFIG, **overrides)
