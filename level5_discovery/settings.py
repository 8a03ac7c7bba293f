"""Typed settings of level 5, loaded from ``config.yaml`` with ``LEVEL5_`` environment overrides."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from ml_common.config import LevelSettings, load_settings, settings_config
from ml_common.stats import N_RESAMPLES

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")


class RetrievalSettings(BaseModel):
    """Retriever knobs."""

    k: int = Field(5, ge=1)
    symbol_bonus: float = Field(0.2, ge=0.0)
    backend: str = Field("faiss", pattern="^(faiss|numpy)$")


class LMSettings(BaseModel):
    """Language-model training."""

    train_worlds: int = Field(6, ge=1)
    steps: int = Field(1500, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(0.005, gt=0)


class RLSettings(BaseModel):
    """Policy training."""

    episodes: int = Field(240, ge=1)
    batch: int = Field(8, ge=1)
    lr: float = Field(0.02, gt=0)
    sizes: list[int] = [6, 8, 10, 12]  # network sizes of the training worlds
    prior_share: float = Field(0.5, ge=0, le=1)  # episodes that see a literature prior


class WorldSettings(BaseModel):
    """The simulated lab: graph density and noise (see ``world.WorldSpec``)."""

    expected_parents: float = Field(1.3, gt=0)
    noise_sd: float = Field(0.4, gt=0)  # biological noise of each gene's equation
    measurement_sd: float = Field(0.1, ge=0)  # instrument noise added to every reading


class LiteratureSettings(BaseModel):
    """How the generated literature is wrong (see ``corpus.generate_corpus``)."""

    coverage: float = Field(0.8, ge=0, le=1)  # share of true edges stated at all
    papers_per_edge: float = Field(7.0, gt=0)
    wrong_sign_rate: float = Field(0.12, ge=0, le=1)  # abstract on a true edge, opposite sign
    false_edges: int = Field(4, ge=0)  # non-edges the literature asserts
    irrelevant: int = Field(120, ge=0)  # abstracts about genes outside the lab


class BudgetSettings(BaseModel):
    """Thinking time per decision, in machine-independent units (same seed, same result).

    z3 counts "resource units" (its ``rlimit``: roughly 1e6 per second on this machine); a
    check that runs out answers *unknown* and the designer falls back to what it has (facts not
    yet examined stay open; with no model at all, the numpy closure). ``wall_seconds`` is a
    last-resort safety net per z3 check; it is never reached at the default sizes (the
    benchmark counts how often it fires: a run where it fired may not reproduce exactly).
    """

    z3_check_rlimit: int = Field(1_000_000, ge=10_000)
    z3_decision_rlimit: int = Field(3_000_000, ge=10_000)
    wall_seconds: float = Field(60.0, gt=0)


class StoppingSettings(BaseModel):
    """When the agent stops by itself (it never sees the hidden network)."""

    rule: str = Field("confirmed", pattern="^(confirmed|decided)$")
    confirmations: int = Field(2, ge=1)  # consecutive experiments the best guess predicted


class MatrixSettings(BaseModel):
    """The one-factor-at-a-time matrix around the default cell (``bench --matrix``)."""

    genes: list[int] = [8, 12, 16, 20]
    noise_scale: list[float] = [0.5, 1.0, 4.0]
    wrong_sign_rate: list[float] = [0.05, 0.12, 0.30]
    worlds: int = Field(4, ge=1)  # held-out worlds per cell at <= 12 genes
    worlds_large: int = Field(2, ge=1)  # per cell at 16 and 20 genes (z3 and the DP cost more)


class BenchSettings(BaseModel):
    """Benchmark size."""

    worlds: int = Field(20, ge=1)
    first_seed: int = 50000
    lm_eval_worlds: int = Field(2, ge=1)
    bootstrap: int = Field(N_RESAMPLES, ge=100)
    matrix: MatrixSettings = MatrixSettings()


class LLMBackendSettings(BaseModel):
    """Optional OpenAI-compatible endpoint (off by default)."""

    enabled: bool = False
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "local-model"
    api_key_env: str = "OPENAI_API_KEY"


class Level5Settings(LevelSettings):
    """Everything a level-5 run reads."""

    model_config = settings_config("LEVEL5_")

    seed: int = 2026
    n_genes: int = Field(12, ge=3, le=40)
    replicates: int = Field(8, ge=2)
    control_replicates: int = Field(16, ge=2)
    max_experiments: int = Field(12, ge=1)
    target_f1: float = Field(0.9, gt=0, le=1)
    prior_threshold: float = Field(0.3, ge=0, le=1)
    essential_genes: int = Field(1, ge=0)
    retrieval: RetrievalSettings = RetrievalSettings()
    lm: LMSettings = LMSettings()
    rl: RLSettings = RLSettings()
    world: WorldSettings = WorldSettings()
    literature: LiteratureSettings = LiteratureSettings()
    budgets: BudgetSettings = BudgetSettings()
    stopping: StoppingSettings = StoppingSettings()
    bench: BenchSettings = BenchSettings()
    llm_backend: LLMBackendSettings = LLMBackendSettings()


def load(path: str | Path | None = None, **overrides: object) -> Level5Settings:
    """Settings from ``path`` (default: the packaged ``config.yaml``) and the environment."""
    return load_settings(Level5Settings, path or DEFAULT_CONFIG, **overrides)
