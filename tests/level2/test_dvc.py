"""The DVC pipeline declares real stages: commands the CLI accepts, code files that exist,
parameters that exist in config.yaml, and metrics/plots that the train stage writes."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from level2_churn.__main__ import STAGES
from level2_churn.settings import DEFAULT_CONFIG
from ml_common.config import read_yaml
from ml_common.paths import PROJECT_ROOT

DVC_FILE = PROJECT_ROOT / "level2_churn" / "dvc.yaml"


def _lookup(config: dict, dotted: str) -> object:
    node: object = config
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, dotted
        node = node[part]
    return node


def test_dvc_stages_match_the_code_and_config() -> None:
    stages = yaml.safe_load(DVC_FILE.read_text())["stages"]
    assert set(stages) == set(STAGES)
    config = read_yaml(DEFAULT_CONFIG)
    datasets = set(config["run"])
    for name, stage in stages.items():
        body = stage.get("do", stage)
        items = stage.get("foreach", {"generated": None})
        keys = items if isinstance(items, list) else list(items)
        assert set(keys) <= datasets
        for key in keys:
            cmd = shlex.split(body["cmd"].replace("${item}", key).replace("${key}", key))
            assert cmd[1:5] == ["-m", "level2_churn", "stage", name]
            for dep in body.get("deps", []):
                if dep.startswith("level2_churn/"):
                    assert (PROJECT_ROOT / dep).is_file(), dep
            for entry in body.get("params", []):
                for dotted in next(iter(entry.values())):
                    _lookup(config, dotted.replace("${item}", key).replace("${key}", key))
        if name == "train":
            assert any("metrics.json" in next(iter(m)) for m in body["metrics"])
            assert body["plots"]
    assert (PROJECT_ROOT / ".dvc" / "config").is_file()
    dvc_config = (PROJECT_ROOT / ".dvc" / "config").read_text()
    assert "analytics = false" in dvc_config and "site_cache_dir" in dvc_config
    assert Path(DVC_FILE).parent.name == "level2_churn"
