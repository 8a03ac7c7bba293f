"""Level 4's settings: ``config.yaml`` in this folder, overridden by ``LEVEL4_*`` variables.

``LEVEL4_SIMULATION__N_CUSTOMERS=500`` shrinks the world, ``LEVEL4_RETRAIN__MARGIN=0.05`` makes the
promotion gate stricter, and so on (``__`` between nested fields).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from level4_fraud.models import LightGBMConfig, TorchConfig
from level4_fraud.simulate import SimulationConfig
from ml_common.config import LevelSettings, load_settings, settings_config

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")


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
    after_alarm_every_days: int = Field(2, ge=1)
    metric: str = "ap"


class ReplayConfig(BaseModel):
    """The replay story's calendar."""

    first_train_day: int = 37
    first_train_days: int = 35
    monitor_start_day: int = 80


class ServeConfig(BaseModel):
    """The scoring service."""

    host: str = "127.0.0.1"
    port: int = 0
    decision_threshold: float = Field(0.5, ge=0, le=1)
    load_test_requests: int = Field(2000, ge=10)


class ScenarioMatrixConfig(BaseModel):
    """The scenario matrix (``scenarios.py``): its axes and the smaller world each case replays."""

    seeds: list[int] = [0, 1]
    pattern_days: list[int] = [70, 80]
    volumes: list[float] = [1.0, 0.5, 0.25]
    seasonal: list[bool] = [True, False]
    include_no_pattern: bool = True
    detect_within_days: int = Field(7, ge=1)
    world_customers: int = Field(2000, ge=100)
    world_terminals: int = Field(4000, ge=100)
    n_days: int = Field(100, ge=30)
    seasonal_day: int = 60
    first_train_day: int = 31
    first_train_days: int = 21
    monitor_start_day: int = 60
    retrain_train_days: int = 14
    torch_epochs: int = 2
    lightgbm_estimators: int = 60


class Level4Settings(LevelSettings):
    """Everything level 4 reads from ``config.yaml``."""

    model_config = settings_config("LEVEL4_")

    simulation: SimulationConfig = SimulationConfig(seasonal_day=100, new_pattern_day=120)
    protocol: ProtocolConfig = ProtocolConfig()
    torch: TorchConfig = TorchConfig()
    lightgbm: LightGBMConfig = LightGBMConfig()
    ensemble: EnsembleConfig = EnsembleConfig()
    monitor: MonitorConfig = MonitorConfig()
    retrain: RetrainConfig = RetrainConfig()
    replay: ReplayConfig = ReplayConfig()
    serve: ServeConfig = ServeConfig()
    scenarios: ScenarioMatrixConfig = ScenarioMatrixConfig()
    experiment: str = "level4_fraud"
    model_name: str = "level4-fraud"
    use_feast: bool = True


def load_config(path: str | Path | None = None, **overrides: object) -> Level4Settings:
    """The level's settings from ``path`` (default: the packaged ``config.yaml``)."""
    return load_settings(Level4Settings, path or DEFAULT_CONFIG, **overrides)
