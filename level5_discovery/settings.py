"""Typed settings of level 5, loaded from ``config.yaml`` with ``LEVEL5_`` environment overrides."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator, model_validator

from ml_common.config import LevelSettings, load_settings, settings_config
from ml_common.matrix import MatrixSettings as RunnerSettings
from ml_common.stats import N_RESAMPLES

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")

# The gene symbols a world draws its genes from; the corpus uses the rest as "genes that don't
# matter". The one definition: the world, the corpus and the language model's training corpus
# all read ``Level5Settings.gene_pool`` (this is its default), and the LM cache key holds it.
DEFAULT_GENE_POOL: tuple[str, ...] = (
    "SOX2", "PAX6", "GATA3", "TBX5", "NKX2", "HES1", "MYOD", "FOXA2", "KLF4", "RUNX1",
    "TP53", "MDM2", "CDX2", "OTX2", "LHX2", "ISL1", "NANOG", "OCT4", "SNAI1", "TWIST",
    "ZEB1", "MSX1", "DLX5", "HAND2", "MEF2C", "ASCL1", "NEUROG", "OLIG2", "SPI1", "CEBPA",
    "IRF8", "EGR1", "FOS", "JUNB", "ATF4", "XBP1", "HIF1A", "STAT3", "SMAD4", "TCF7",
)  # fmt: skip


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

    rule: str = Field("posterior", pattern="^(posterior|confirmed|decided)$")
    # posterior: stop when P(best guess has F1 >= target_f1 | data) >= probability; the
    # probability is calibrated on the tuning worlds (bench.tuning), never on evaluation ones.
    probability: float = Field(0.95, gt=0, le=1)
    posterior_samples: int = Field(100, ge=10)
    confirmations: int = Field(2, ge=1)  # consecutive experiments the best guess predicted
    # Weigh the literature by its reliability measured from the agent's own experiments.
    adaptive_prior: bool = True


class MatrixSettings(BaseModel):
    """The literature matrix (``bench``): coverage × invented edges × wrong-sign rate around 12
    genes, plus lab sizes at the default literature."""

    coverage: list[float] = [0.1, 0.4, 0.8]
    false_edges: list[int] = [4, 16]
    wrong_sign_rate: list[float] = [0.05, 0.30]
    genes: list[int] = [8, 16, 20, 24]
    worlds: int = Field(4, ge=1)  # evaluation worlds per cell up to 16 genes
    worlds_large: int = Field(2, ge=1)  # per cell at 20 genes and more


class BenchSettings(BaseModel):
    """Benchmark size, and which worlds tune and which evaluate (never the same)."""

    worlds: int = Field(20, ge=1)
    first_seed: int = 50000  # evaluation worlds: first_seed, first_seed + 1, ...
    # Tuning worlds: the stopping probability is calibrated here, never on evaluation worlds.
    tuning_first_seed: int = 60000
    tuning_worlds: int = Field(8, ge=1)
    lm_eval_worlds: int = Field(2, ge=1)
    bootstrap: int = Field(N_RESAMPLES, ge=100)
    matrix: MatrixSettings = MatrixSettings()
    # Where the matrix's cells run: ml_common's runner (a Dask LocalCluster by default).
    runner: RunnerSettings = RunnerSettings()

    @model_validator(mode="after")
    def _tuning_apart(self) -> BenchSettings:
        evaluation = range(self.first_seed, self.first_seed + max(self.worlds, 100))
        tuning = range(self.tuning_first_seed, self.tuning_first_seed + self.tuning_worlds)
        if set(evaluation) & set(tuning):
            raise ValueError("tuning worlds overlap the evaluation worlds: move tuning_first_seed")
        return self


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
    # Symbols the lab's genes are drawn from (another naming scheme: list other symbols).
    gene_pool: list[str] = Field(default_factory=lambda: list(DEFAULT_GENE_POOL))
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


    @field_validator("gene_pool")
    @classmethod
    def _symbols(cls, pool: list[str]) -> list[str]:
        # One word each (the tokenizer and the grammar split on anything else), no repeats.
        bad = [g for g in pool if not g.isalnum() or not g[0].isalpha()]
        if bad:
            raise ValueError(f"gene symbols must be letters and digits, starting with a letter; "
                             f"{len(bad)} are not")  # fmt: skip
        if len(set(pool)) != len(pool):
            raise ValueError("gene symbols must be unique")
        return pool

    @model_validator(mode="after")
    def _pool_holds_the_lab(self) -> Level5Settings:
        # The corpus needs genes outside the lab for its irrelevant abstracts.
        if len(self.gene_pool) < self.n_genes + 2:
            raise ValueError(f"gene_pool needs at least n_genes + 2 = {self.n_genes + 2} symbols, "
                             f"has {len(self.gene_pool)}")  # fmt: skip
        return self


def load(path: str | Path | None = None, **overrides: object) -> Level5Settings:
    """Settings from ``path`` (default: the packaged ``config.yaml``) and the environment."""
    return load_settings(Level5Settings, path or DEFAULT_CONFIG, **overrides)
