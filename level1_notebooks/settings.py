"""Level 1 settings: ``config.yaml`` beside this file, ``LEVEL1_*`` environment variables on top."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from ml_common.config import LevelSettings, load_settings, settings_config
from ml_common.paths import level_dir

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")


class Level1Settings(LevelSettings):
    """What one execution of the Titanic notebook needs; papermill passes these as parameters."""

    model_config = settings_config("LEVEL1_")

    seed: int = Field(42, ge=0, lt=2**32)
    n_folds: int = Field(10, ge=2, le=50)
    n_random_splits: int = Field(100, ge=2, le=1000)
    test_size: float = Field(0.2, gt=0.0, lt=1.0)
    data_path: Path | None = None
    output_dir: Path | None = None
    cell_timeout_s: int = Field(600, ge=10)

    def resolved_output_dir(self) -> Path:
        """Where the run writes: ``output_dir`` or ``artifacts/level1``."""
        return Path(self.output_dir) if self.output_dir is not None else level_dir(1)

    def resolved_data_path(self) -> Path:
        """The raw CSV to load: ``data_path`` or ``artifacts/level1/data/titanic.csv``."""
        if self.data_path is not None:
            return Path(self.data_path)
        return level_dir(1) / "data" / "titanic.csv"


def load_level1_settings(path: str | Path | None = None, **overrides: object) -> Level1Settings:
    """Load ``path`` (default: the package's ``config.yaml``); keyword overrides win over the file.

    ``None`` overrides are dropped so that an absent command-line flag keeps the file's value.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    return load_settings(Level1Settings, path or DEFAULT_CONFIG, **given)
