"""The DVC pipeline file: stages, their code dependencies and params exist; DVC parses it."""

import re
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


def _dvc(*args: str) -> str:
    dvc = shutil.which("dvc", path=str(Path(sys.executable).parent)) or shutil.which("dvc")
    if dvc is None or not (PROJECT_ROOT / ".dvc").is_dir():
        pytest.skip("dvc or the repository's .dvc folder is missing")
    result = subprocess.run(
        [dvc, *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_dvc_runs_the_stages_in_order_with_the_level_s_commands():
    """What `dvc repro` would run (dry: nothing executes or is written): the three commands of
    the level's CLI, prepare before tune before train."""
    out = _dvc("repro", "--dry", "--force", str(DVC_FILE.relative_to(PROJECT_ROOT)))
    ran = re.findall(r"Running stage '[^']*:(\w+)':\n> (.+)", out)
    assert ran == [(s, f"python -m level3_recsys {s}") for s in ("prepare", "tune", "train")]


def test_dvc_dag_reruns_train_when_data_or_tuning_change():
    dot = _dvc("dag", "--dot", str(DVC_FILE.relative_to(PROJECT_ROOT)))
    edges = set(re.findall(r':(\w+)" -> "[^"]*:(\w+)"', dot))
    assert edges == {("prepare", "tune"), ("prepare", "train"), ("tune", "train")}


def test_dvc_tracks_the_folders_the_code_writes(tmp_path, monkeypatch):
    """The stages' outs are where the commands write: a moved folder in code breaks this."""
    from level3_recsys.train import default_dirs

    monkeypatch.setenv("ML_ARTIFACTS_DIR", str(tmp_path / "artifacts"))  # dvc.yaml's root
    data, models, _ = (p.relative_to(tmp_path).as_posix() for p in default_dirs())
    stages = yaml.safe_load(DVC_FILE.read_text())["stages"]
    assert stages["prepare"]["outs"] == [data]
    assert stages["train"]["outs"] == [models]
    assert stages["tune"]["outs"] == [models.rsplit("/", 1)[0] + "/tuning"]  # `tune`'s default
