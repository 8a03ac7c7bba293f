"""Every level's DVC pipeline can be used from a fresh clone.

DVC refuses to work with a ``dvc.lock`` that git ignores: one ignored lock (level 2 had one)
made ``dvc repro`` fail for every pipeline in the repository.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ml_common.paths import PROJECT_ROOT

PIPELINES = sorted(PROJECT_ROOT.glob("level*/dvc.yaml"))


def _dvc() -> str:
    dvc = shutil.which("dvc", path=str(Path(sys.executable).parent)) or shutil.which("dvc")
    if dvc is None or not (PROJECT_ROOT / ".dvc").is_dir() or not (PROJECT_ROOT / ".git").exists():
        pytest.skip("dvc, the repository's .dvc folder or its git checkout is missing")
    return dvc


def test_levels_have_pipelines() -> None:
    assert {p.parent.name for p in PIPELINES} >= {"level2_churn", "level3_recsys"}


@pytest.mark.parametrize("pipeline", PIPELINES, ids=lambda p: p.parent.name)
def test_lock_is_not_git_ignored_and_dvc_status_runs(pipeline: Path) -> None:
    dvc = _dvc()
    lock = pipeline.with_name("dvc.lock").relative_to(PROJECT_ROOT)
    ignored = subprocess.run(["git", "check-ignore", "-q", str(lock)], cwd=PROJECT_ROOT)
    assert ignored.returncode == 1, f"{lock} is git-ignored: DVC then refuses every pipeline"
    command = [dvc, "status", str(pipeline.relative_to(PROJECT_ROOT))]
    status = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert status.returncode == 0, status.stdout + status.stderr
