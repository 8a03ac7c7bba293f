"""The DVC pipeline file: stages, their code dependencies and params exist; DVC parses it."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ml_common.paths import PROJECT_ROOT

DVC_FILE = PROJECT_ROOT / "level3_recsys" / "dvc.yaml"


def test_stages_dependencies_and_params_exist():
    stages = yaml.safe_load(DVC_FILE.read_text())["stages"]
    assert set(stages) == {"prepare", "tune", "train"}
    config = yaml.safe_load((PROJECT_ROOT / "level3_recsys" / "config.yaml").read_text())
    for stage in stages.values():
        root = (DVC_FILE.parent / stage["wdir"]).resolve()
        assert root == PROJECT_ROOT
        for dep in stage["deps"]:
            assert dep.startswith("artifacts/") or (root / dep).exists(), dep
        for params in stage["params"]:
            for file, keys in params.items():
                assert (root / file).is_file()
                assert all(key in config for key in keys)
    assert "artifacts/level3/data" in stages["train"]["deps"]  # train reruns when data changes
    assert "artifacts/level3/tuning" in stages["train"]["deps"]  # ... and when tuning does


def test_dvc_lists_the_stages():
    dvc = shutil.which("dvc", path=str(Path(sys.executable).parent)) or shutil.which("dvc")
    if dvc is None or not (PROJECT_ROOT / ".dvc").is_dir():
        pytest.skip("dvc or the repository's .dvc folder is missing")
    result = subprocess.run(
        [dvc, "stage", "list", "--name-only", str(DVC_FILE)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "prepare" in result.stdout and "train" in result.stdout
