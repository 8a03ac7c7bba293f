"""The Prefect 3 flow, and the table of contents of level 2: each task is a stage in ``stages.py``,
and each stage is built from one file per step.

- ``generate``  generate.py: the messy multi-source data (generated dataset only)
- ``prepare``   ingest.py (pandera schemas) -> clean.py (domain rules) -> features.py (as of
                each cut-off, or the configured ratios of a snapshot table)
- ``train``     split.py (test part set aside / walk-forward) -> tune.py (Optuna) ->
                compare.py (candidate families on the same folds, corrected t-tests, the
                family chosen by the declared rule, imbalance.py methods for it) ->
                threshold.py (business metric) -> mechanism.py (generated data);
                the recipes that order these steps: snapshot_protocol.py, walk_forward.py
- ``register``  register.py + serve.py: a pyfunc (raw columns in, labelled frame out) in the
                MLflow registry; champion only if strictly better on the selection score

Tasks that touch files or the tracking server retry (``retries=2``) unless the error is the
user's (bad data or config: retrying cannot help). ``generate`` and ``prepare`` are cached by
their real inputs (settings, seed, data hashes, code version), so a rerun with nothing changed
skips them. ``train`` is never cached: its metrics are what a run is for.

Without ``PREFECT_API_URL`` Prefect starts a temporary local server (15-20 s the first time).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.context import TaskRunContext

from level2_churn import stages
from level2_churn.ingest import file_hash
from level2_churn.settings import EventDataset, Level2Settings, config_hash
from ml_common.config import ConfigError
from ml_common.datasets import DataError
from ml_common.paths import level_dir


def _retry_unless_user_error(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except (DataError, ConfigError):
        return False
    except Exception:
        return True
    return True


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _generate_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    cfg: Level2Settings = parameters["cfg"]
    name = parameters["name"]
    return _key("generate", cfg.seed, cfg.datasets[name].model_dump(), str(level_dir(2)))


def _prepare_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    cfg: Level2Settings = parameters["cfg"]
    raw: Path | None = parameters.get("raw_dir")
    hashes = sorted((p.name, file_hash(p)) for p in raw.glob("*.csv")) if raw else []
    return _key(
        "prepare",
        config_hash(cfg),
        parameters["name"],
        hashes,
        stages.code_version(),
        str(level_dir(2)),
    )


@task(
    retries=2,
    retry_delay_seconds=1,
    retry_condition_fn=_retry_unless_user_error,
    cache_key_fn=_generate_key,
)
def generate(cfg: Level2Settings, name: str) -> Path:
    return stages.generate_stage(cfg, name)


@task(
    retries=2,
    retry_delay_seconds=1,
    retry_condition_fn=_retry_unless_user_error,
    cache_key_fn=_prepare_key,
)
def prepare(cfg: Level2Settings, name: str, raw_dir: Path | None) -> Path:
    return stages.prepare_stage(cfg, name, raw_dir)


@task
def train(cfg: Level2Settings, name: str, prepared: Path) -> dict[str, Any]:
    return stages.train_stage(cfg, name)


@task(retries=2, retry_delay_seconds=1, retry_condition_fn=_retry_unless_user_error)
def register(cfg: Level2Settings, name: str, metrics: dict[str, Any]) -> dict[str, Any]:
    return stages.register_stage(cfg, name)


@flow(name="level2-churn", log_prints=True, validate_parameters=False)
def churn_flow(cfg: Level2Settings) -> dict[str, Any]:
    """Run every dataset named in ``cfg.run``; return per-dataset metrics and registrations."""
    start = time.perf_counter()
    results: dict[str, Any] = {}
    for name in cfg.run:
        raw = generate(cfg, name) if isinstance(cfg.datasets[name], EventDataset) else None
        prepared = prepare(cfg, name, raw)
        metrics = train(cfg, name, prepared)
        results[name] = {"metrics": metrics, "registered": register(cfg, name, metrics)}
    results["pipeline_seconds"] = time.perf_counter() - start
    return results
