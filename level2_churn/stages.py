"""The stages as functions that read and write files, so Prefect and DVC run the same code.

Layout under ``artifacts/level2/<dataset>/``::

    raw/        generated sources (generated dataset only)       <- generate
    prepared/   table.parquet, columns.json, record.json          <- ingest + clean + features
    train/      metrics.json, trials.csv, model.joblib, *.png  <- split, imbalance, tune, evaluate
    registered.json                                               <- register (MLflow)

Each folder is written atomically: a failed stage leaves the previous outputs (or none).
``record.json`` / ``run.json`` hold the resolved config, the data hashes and the code version.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

from level2_churn import clean, features, generate, ingest
from level2_churn.settings import (
    ColumnMapping,
    EventDataset,
    Level2Settings,
    SnapshotDataset,
    config_hash,
)
from ml_common.atomic import atomic_dir, write_json
from ml_common.config import dump_settings
from ml_common.logs import get_logger
from ml_common.paths import PROJECT_ROOT, level_dir

log = get_logger(__name__)


def dataset_dir(name: str) -> Path:
    return level_dir(2) / name


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def code_version() -> dict[str, Any]:
    """The git commit of the code and whether the level's files differ from it."""
    try:
        sha = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--", "level2_churn")
        return {"git_sha": sha, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"git_sha": "unknown", "dirty": None}


def generate_stage(cfg: Level2Settings, name: str) -> Path:
    """Write the generated sources unless the same settings and seed already wrote them."""
    dataset = cfg.datasets[name]
    if not isinstance(dataset, EventDataset):
        raise ValueError(f"dataset {name!r} is not generated (kind {dataset.kind!r})")
    raw = dataset_dir(name) / "raw"
    manifest = raw / "manifest.json"
    wanted = {"seed": cfg.seed, "settings": dataset.generator.model_dump()}
    if manifest.is_file():
        found = generate.read_manifest(raw)
        if {k: found.get(k) for k in wanted} == wanted:
            log.info("%s: sources already generated with these settings", name)
            return raw
    log.info("%s: generating %d customers", name, dataset.generator.n_customers)
    generate.generate(raw, dataset.generator, cfg.seed)
    return raw


def event_cutoffs(dataset: EventDataset) -> list[int]:
    """Month indices of the cut-offs: after ``history_months``, up to the last full label month."""
    first = clean.month_index(pd.Series([pd.Timestamp(dataset.generator.start)])).iloc[0]
    return list(range(int(first) + dataset.history_months, int(first) + dataset.generator.months))


def prepare_stage(cfg: Level2Settings, name: str, raw_dir: Path | None = None) -> Path:
    """Ingest, validate, clean, join as of each cut-off and build features -> ``prepared/``."""
    dataset = cfg.datasets[name]
    target = dataset_dir(name) / "prepared"
    if isinstance(dataset, SnapshotDataset):
        frame = ingest.load_snapshot(dataset)
        hashes = {dataset.source: ingest.frame_hash(frame)}
        X, y = clean.clean_snapshot(frame, dataset)
        table = features.snapshot_features(X, dataset.columns)
        table[dataset.columns.target] = y.to_numpy()
        columns = dataset.columns.model_copy(
            update={"numeric": [*dataset.columns.numeric, *dataset.columns.ratios]}
        )
    else:
        raw_dir = raw_dir or dataset_dir(name) / "raw"
        hashes = {f"{s}.csv": ingest.file_hash(raw_dir / f"{s}.csv") for s in generate.SOURCES}
        sources = clean.clean_sources(raw_dir, dataset.generator.local_timezone)
        table = features.event_table(sources, event_cutoffs(dataset))
        columns = features.event_columns(table)
    with atomic_dir(target) as tmp:
        table.to_parquet(tmp / "table.parquet", index=False)
        write_json(tmp / "columns.json", columns.model_dump())
        write_json(
            tmp / "record.json",
            {
                "dataset": name,
                "rows": len(table),
                "positive_rate": float(table[columns.target].mean()),
                "data_hashes": hashes,
                "config_hash": config_hash(cfg),
                "code_version": code_version(),
            },
        )
    log.info("%s: prepared %d rows", name, len(table))
    return target


def train_stage(cfg: Level2Settings, name: str) -> dict[str, Any]:
    """Split, tune, compare models and imbalance methods, evaluate -> ``train/``; log to MLflow."""
    import joblib

    from level2_churn.snapshot_protocol import train_snapshot
    from level2_churn.walk_forward import train_walk_forward
    from ml_common.seeding import seed_everything
    from ml_common.tracking import setup_mlflow

    seed_everything(cfg.seed)
    prepared = dataset_dir(name) / "prepared"
    table = pd.read_parquet(prepared / "table.parquet")
    columns = ColumnMapping(**json.loads((prepared / "columns.json").read_text()))
    record = json.loads((prepared / "record.json").read_text())
    dataset = cfg.datasets[name]
    run_record = {
        "dataset": name,
        "config": dump_settings(cfg),
        "config_hash": config_hash(cfg),
        "data_hashes": record["data_hashes"],
        "code_version": code_version(),
    }
    mlflow = setup_mlflow(cfg.experiment)
    with (
        atomic_dir(dataset_dir(name) / "train") as tmp,
        mlflow.start_run(run_name=f"{name}-train") as run,
    ):
        mlflow.set_tags(
            {
                "dataset": name,
                "git_sha": run_record["code_version"]["git_sha"],
                "config_hash": run_record["config_hash"],
                **{f"data_hash.{k}": v[:16] for k, v in record["data_hashes"].items()},
            }
        )
        mlflow.log_params({"seed": cfg.seed, "n_trials": cfg.tune.n_trials, "rows": len(table)})
        if isinstance(dataset, SnapshotDataset):
            metrics, model = train_snapshot(table, columns, dataset, cfg, tmp, mlflow)
            flat = {f"cv_{m}_{k}": v for m, s in metrics["cv"].items() for k, v in s.items()} | {
                f"holdout_{k}": v for k, v in metrics["holdout"].items() if k != "confusion"
            }
        else:
            metrics, model = train_walk_forward(table, columns, dataset, cfg, tmp, mlflow)
            flat = {
                f"walk_forward_{m}_{k}": v
                for m, s in metrics["walk_forward"].items()
                for k, v in s.items()
            }
        metrics["mlflow_run_id"] = run.info.run_id
        joblib.dump(model, tmp / "model.joblib")
        write_json(tmp / "metrics.json", metrics)
        write_json(tmp / "run.json", run_record)
        mlflow.log_metrics({k: float(v) for k, v in flat.items() if v is not None})
        mlflow.log_dict(run_record, "run.json")
        mlflow.log_artifacts(str(tmp), artifact_path="outputs")
    return metrics


def register_stage(cfg: Level2Settings, name: str) -> dict[str, Any]:
    """Register the trained model in MLflow; alias ``champion`` if it beats the current one."""
    import joblib

    from level2_churn.register import register_model

    folder = dataset_dir(name) / "train"
    metrics = json.loads((folder / "metrics.json").read_text())
    model = joblib.load(folder / "model.joblib")
    prepared = dataset_dir(name) / "prepared"
    columns = ColumnMapping(**json.loads((prepared / "columns.json").read_text()))
    dataset = cfg.datasets[name]
    if isinstance(dataset, SnapshotDataset):
        # Raw rows as a user would read the source: the model computes the ratios itself.
        example = ingest.read_raw_rows(dataset, rows=50)
        columns, missing = dataset.columns, dataset.missing_values
    else:
        example = pd.read_parquet(prepared / "table.parquet").head(50)
        missing = None
    result = register_model(cfg, name, model, metrics, example, columns, missing)
    write_json(dataset_dir(name) / "registered.json", result)
    return result
