"""Typed settings of level 5, loaded from ``config.yaml`` with ``LEVEL5_`` environment overrides."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from ml_common.config import LevelSettings, load_settings, settings_config

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


class BenchSettings(BaseModel):
    """Benchmark size."""

    worlds: int = Field(20, ge=1)
    first_seed: int = 50000
    lm_eval_worlds: int = Field(2, ge=1)


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
    bench: BenchSettings = BenchSettings()
    llm_backend: LLMBackendSettings = LLMBackendSettings()


def load(path: str | Path | None = None, **overrides: object) -> Level5Settings:
    """Settings from ``path`` (default: the packaged ``config.yaml``) and the environment."""
    return load_settings(Level5Settings, path or DEFAULT_CONFIG, **overrides)
