"""Level 3 settings: ``config.yaml`` validated into typed objects, ``LEVEL3_*`` env on top."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from ml_common.config import LevelSettings, load_settings, settings_config
from ml_common.stats import N_RESAMPLES

CONFIG_PATH = Path(__file__).with_name("config.yaml")
# The token shipped in config.yaml: public, so the service refuses it unless told it is a dev run.
DEFAULT_ADMIN_TOKEN = "change-me-level3"


class DataSettings(BaseModel):
    min_rating: float = 4.0
    min_item_positives: int = Field(3, ge=1)
    holdout_per_user: int = Field(5, ge=1)
    min_train_per_user: int = Field(1, ge=1)
    timecut_quantile: float = Field(0.9, gt=0, lt=1)


class TrainSettings(BaseModel):
    """Fixed training settings; the tuned ones (see :class:`TuneSettings`) are not here."""

    k: int = Field(10, ge=1)
    als_iterations: int = Field(15, ge=1)
    bpr_iterations: int = Field(100, ge=1)
    bootstrap_resamples: int = Field(N_RESAMPLES, ge=100)
    confidence: float = Field(0.95, gt=0, lt=1)
    model_name: str = "level3-recsys"
    experiment: str = "level3-recsys"


class TuneSettings(BaseModel):
    """Grids searched on the validation split (each user's latest training positives)."""

    validation_per_user: int = Field(5, ge=1)
    ease_lambda: list[float] = Field([100.0, 200.0, 400.0, 800.0, 1600.0], min_length=1)
    half_life: list[float] = Field([1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 1e9], min_length=1)
    knn_neighbours: list[int] = Field([100, 200, 400, 800, 1600], min_length=1)
    als_factors: list[int] = Field([64, 128, 256], min_length=1)
    als_regularization: list[float] = Field([1.0, 10.0, 30.0, 100.0], min_length=1)
    bpr_factors: list[int] = Field([16, 32, 64], min_length=1)
    bpr_learning_rate: list[float] = Field([0.003, 0.01, 0.03, 0.1], min_length=1)


class BatchSettings(BaseModel):
    top_n: int = Field(50, ge=1)
    cron: str = "0 3 * * *"


class StoreSettings(BaseModel):
    backend: Literal["sqlite", "redis"] = "sqlite"
    sqlite_path: str | None = None
    redis_url: str = "redis://127.0.0.1:6379/0"
    max_age_hours: float = Field(36.0, gt=0)


class ServeSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8300, ge=1, le=65535)
    bundle_dir: str | None = None
    admin_token: str = DEFAULT_ADMIN_TOKEN
    allow_default_admin_token: bool = False
    max_body_bytes: int = Field(65536, ge=1024)
    impression_capacity: int = Field(100_000, ge=1)
    impression_ttl_s: float = Field(1800.0, gt=0)
    max_k: int = Field(100, ge=1)
    shadow: bool = True
    shadow_sample_rate: float = Field(0.1, ge=0.0, le=1.0)
    breaker_failures: int = Field(3, ge=1)
    breaker_reset_seconds: float = Field(5.0, gt=0)
    model_timeout_ms: float = Field(50.0, gt=0)
    store_timeout_ms: float = Field(50.0, gt=0)
    drift_window: int = Field(2000, ge=10)


class DeploySettings(BaseModel):
    image: str = "ml-levels/recsys:latest"
    container: str = "level3-recsys"
    port: int = Field(8300, ge=1, le=65535)


class LoadtestSettings(BaseModel):
    users: int = Field(10, ge=1)
    spawn_rate: float = Field(10, gt=0)
    duration_s: int = Field(20, ge=1)
    target_rps: float = Field(200, gt=0)


class Level3Settings(LevelSettings):
    """Everything level 3 reads from its config file."""

    model_config = settings_config("LEVEL3_")

    seed: int = 42
    data: DataSettings = DataSettings()
    train: TrainSettings = TrainSettings()
    tune: TuneSettings = TuneSettings()
    batch: BatchSettings = BatchSettings()
    store: StoreSettings = StoreSettings()
    serve: ServeSettings = ServeSettings()
    deploy: DeploySettings = DeploySettings()
    loadtest: LoadtestSettings = LoadtestSettings()


def load(path: str | Path | None = None, **overrides: object) -> Level3Settings:
    """Load the level's settings from ``path`` (default: the packaged ``config.yaml``)."""
    return load_settings(Level3Settings, path or CONFIG_PATH, **overrides)
