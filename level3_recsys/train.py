"""Stage 4 — train: fit every model with its tuned settings, evaluate once, track, register.

The project's model is **recency-weighted EASE**: EASE's item-item matrix, with each user's
history weighted ``0.5 ** (position_from_latest / half_life)`` at scoring time. Every model's
settings (λ and the half-life included) come from :mod:`tune`, which searches grids on a
validation split carved out of the training data; this stage reads them (rerunning the search
if it is missing or was made from other data/settings) and touches each test split once.

Two protocols are evaluated (see :mod:`data`): leave-last-5 (the served models are trained on
its training split) and a global time cut. Each reported mean has a bootstrap 95% interval over
users, and the lead of ours over the best peer is a paired bootstrap interval on the same users.

The served models (ours as ``champion``, the recency-weighted item-kNN as ``challenger``) are
logged as model folders (see :mod:`bundle`) and registered under one name.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from level3_recsys import data as data_stage
from level3_recsys.bundle import UserHistories, default_serving_dir
from level3_recsys.evaluate import evaluate_per_user
from level3_recsys.models import ItemToItem, RecencyWeighted, recency_matrix
from level3_recsys.settings import Level3Settings
from level3_recsys.tune import (
    CHALLENGER_MODEL,
    MODELS,
    OURS,
    PEERS,
    PROTOCOLS,
    ModelFactory,
    load_or_tune,
)
from ml_common.atomic import atomic_dir, write_json
from ml_common.cli import UsageError
from ml_common.logs import get_logger
from ml_common.paths import level_dir
from ml_common.stats import bootstrap_ci
from ml_common.tracking import CHALLENGER, CHAMPION, alias_version, set_alias, setup_mlflow

__all__ = ["CHALLENGER_MODEL", "OURS", "RecencyWeighted", "recency_matrix", "train"]
log = get_logger(__name__)


def feature_reference(dataset: data_stage.Dataset, sample: int = 5000) -> dict[str, list[float]]:
    """Training distributions of the features the service monitors for drift."""
    rng = np.random.default_rng(0)
    activity = np.diff(dataset.train.indptr).astype(float)
    popularity = dataset.popularity
    item_pop_per_interaction = popularity[dataset.train.indices]
    pick = rng.choice(len(item_pop_per_interaction), min(sample, len(item_pop_per_interaction)))
    return {
        "user_activity": activity.tolist(),
        "item_popularity": item_pop_per_interaction[pick].astype(float).tolist(),
        # Anonymous sessions have no training log; a user's 20 latest items stand in for one.
        "session_length": np.minimum(activity, 20).tolist(),
    }


def save_model_folder(
    folder: Path,
    model: ItemToItem,
    name: str,
    half_life: float,
    dataset: data_stage.Dataset,
    histories: UserHistories,
    reference: dict[str, list[float]],
    metrics: dict[str, float],
) -> None:
    """Write one servable model folder (the :mod:`bundle` layout)."""
    folder.mkdir(parents=True, exist_ok=True)
    # Row-major: serving gathers a history's rows (``W[history]``); a column-major matrix (as
    # item-kNN's transposed similarity comes out) makes that gather ~20x slower.
    np.save(folder / "weights.npy", np.ascontiguousarray(model.weights, dtype=np.float32))
    np.save(folder / "item_ids.npy", dataset.item_ids.astype(np.int64))
    np.save(folder / "popularity.npy", dataset.popularity.astype(np.float32))
    histories.save(folder / "users.npz")
    write_json(folder / "reference.json", reference)
    titles = dict(zip(dataset.items["item_id"].astype(int), dataset.items["title"], strict=True))
    write_json(folder / "items.json", {str(k): v for k, v in titles.items()})
    write_json(
        folder / "model.json",
        {"name": name, "half_life": half_life, "metrics": metrics, "items": len(dataset.item_ids)},
    )


def user_histories(train: pd.DataFrame, dataset: data_stage.Dataset) -> UserHistories:
    """Training items of every user as catalogue columns, latest first."""
    ordered = train.sort_values(["user_id", "timestamp", "item_id"], ascending=[True, False, False])
    columns = np.searchsorted(dataset.item_ids, ordered["item_id"].to_numpy())
    counts = ordered.groupby("user_id").size().reindex(dataset.user_ids, fill_value=0).to_numpy()
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return UserHistories(dataset.user_ids.astype(np.int64), indptr, columns.astype(np.int64))


def evaluate_protocol(
    settings: Level3Settings, data_dir: Path, chosen: dict[str, dict[str, float]], label: str
) -> tuple[dict[str, Any], dict[str, RecencyWeighted]]:
    """Fit every model with its chosen settings on one split's training data, score its test
    split once; return the report (means, intervals, leads) and the two servable models."""
    t = settings.train
    k, key = t.k, f"ndcg@{t.k}"
    dataset = data_stage.load_dataset(data_dir)
    frame = pd.read_csv(data_dir / "train.csv")
    factory = ModelFactory(settings, frame, dataset.user_ids, dataset.item_ids, dataset.train)
    results: dict[str, dict[str, Any]] = {}
    per_user: dict[str, np.ndarray] = {}
    servable: dict[str, RecencyWeighted] = {}

    def interval(values: np.ndarray) -> list[float]:
        return bootstrap_ci(
            values, resamples=t.bootstrap_resamples, confidence=t.confidence, seed=settings.seed
        ).as_list()

    for name in MODELS:
        start = time.perf_counter()
        model = factory.build(name, chosen[name])
        if name in (OURS, CHALLENGER_MODEL):
            servable[name] = model
        metrics, coverage = evaluate_per_user(model, dataset.train, dataset.test, k)
        per_user[name] = metrics[key]
        results[name] = {metric: float(values.mean()) for metric, values in metrics.items()}
        results[name].update(coverage=coverage, users=int(len(metrics[key])))
        results[name][f"{key}_ci"] = interval(metrics[key])
        log.info(
            "%-10s %-16s %s %.4f [%.4f, %.4f]  (%.1f s)",
            label,
            name,
            key,
            results[name][key],
            *results[name][f"{key}_ci"],
            time.perf_counter() - start,
        )
    best_peer = max(PEERS, key=lambda name: results[name][key])
    leads = {}
    for other in (*PEERS, CHALLENGER_MODEL):
        difference = per_user[OURS] - per_user[other]
        leads[other] = {"estimate": float(difference.mean()), "ci": interval(difference)}
    report = {
        "train_users": int(dataset.train.shape[0]),
        "users": results[OURS]["users"],
        "test_interactions": int(dataset.test.nnz),
        "items": int(len(dataset.item_ids)),
        "chosen": chosen,
        "models": results,
        "best_peer": best_peer,
        "lead_vs_best_peer": leads[best_peer],
        "lead_vs": leads,
    }
    return report, servable


def train(
    settings: Level3Settings, data_dir: Path, out_dir: Path, tuning_dir: Path | None = None
) -> dict[str, Any]:
    """Fit, evaluate, save and register the models with the tuned settings; return the
    metrics (also ``out_dir/metrics.json``). ``tuning_dir`` defaults to ``out_dir``'s sibling
    ``tuning``."""
    t = settings.train
    tuning_dir = tuning_dir or out_dir.parent / "tuning"
    tuning = load_or_tune(settings, data_dir, tuning_dir)
    reports = {}
    for label, folder in PROTOCOLS.items():
        chosen = tuning["protocols"][label]["chosen"]
        reports[label], servable = evaluate_protocol(settings, data_dir / folder, chosen, label)
        if label == "leave_last":
            served, served_chosen = servable, chosen
    main = reports["leave_last"]
    dataset = data_stage.load_dataset(data_dir)
    train_frame = pd.read_csv(data_dir / "train.csv")
    histories = user_histories(train_frame, dataset)
    reference = feature_reference(dataset)
    half_life = served_chosen[OURS]["half_life"]
    with atomic_dir(out_dir) as tmp:
        for name in (OURS, CHALLENGER_MODEL):
            save_model_folder(
                tmp / name,
                served[name].base,
                name,
                served_chosen[name]["half_life"],
                dataset,
                histories,
                reference,
                main["models"][name],
            )
        summary = {
            "k": t.k,
            "half_life": half_life,
            "chosen": served_chosen,
            "validation_ndcg": {
                name: max(row[f"ndcg@{t.k}"] for row in rows)
                for name, rows in tuning["protocols"]["leave_last"]["scores"].items()
            },
            "models": main["models"],
            "users": main["users"],
            "best_peer": main["best_peer"],
            "lead_vs_best_peer": main["lead_vs_best_peer"],
            "lead_vs": main["lead_vs"],
            "timecut": reports["timecut"],
            "bootstrap": {
                "unit": "users",
                "resamples": t.bootstrap_resamples,
                "confidence": t.confidence,
                "method": "percentile",
            },
            "protocol": (
                f"ratings>={settings.data.min_rating} positives; each user's "
                f"{settings.data.holdout_per_user} latest positives held out; catalogue: items "
                f"with >={settings.data.min_item_positives} training positives; full ranking, "
                "seen items excluded; settings tuned on a validation split of the training data"
            ),
        }
        write_json(tmp / "metrics.json", summary)
        write_json(tmp / "config.json", settings.model_dump(mode="json"))

    # The model folder stays byte-identical for identical inputs (DVC sees no change); the
    # registry versions, which change on every run, are written beside it.
    summary["registered"] = register(settings, out_dir, summary)
    write_json(out_dir.parent / "registry.json", summary["registered"])
    write_json(out_dir.parent / "metrics.json", flat_metrics(summary))  # DVC metrics file
    return summary


def flat_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """Numbers only, for ``dvc metrics show``: each model's metrics, the lead, the time cut."""
    k = summary["k"]
    keys = (f"ndcg@{k}", f"recall@{k}", f"map@{k}", "coverage")
    flat: dict[str, Any] = {
        name: {key: m[key] for key in keys} for name, m in summary["models"].items()
    }
    for prefix, report in (("", summary), ("timecut_", summary["timecut"])):
        lead = report["lead_vs_best_peer"]
        flat[f"{prefix}lead_vs_best_peer"] = {
            f"ndcg@{k}": lead["estimate"],
            "ci_low": lead["ci"][0],
            "ci_high": lead["ci"][1],
        }
    flat["timecut"] = {
        "users": summary["timecut"]["users"],
        **{name: m[f"ndcg@{k}"] for name, m in summary["timecut"]["models"].items()},
    }
    return flat


def register(settings: Level3Settings, models_dir: Path, summary: dict[str, Any]) -> dict:
    """Log the run to MLflow, register both model folders, point the aliases at them."""
    mlflow = setup_mlflow(settings.train.experiment)
    name = settings.train.model_name
    k = summary["k"]
    with mlflow.start_run(run_name="train") as run:
        mlflow.log_params(
            {
                **{f"train.{key}": value for key, value in settings.train.model_dump().items()},
                **{f"data.{key}": value for key, value in settings.data.model_dump().items()},
                **{
                    f"chosen.{model_name}.{key}": value
                    for model_name, params in summary["chosen"].items()
                    for key, value in params.items()
                },
                "half_life": summary["half_life"],
            }
        )
        for model_name, metrics in summary["models"].items():
            for metric, value in metrics.items():
                if isinstance(value, list):  # an interval
                    metric_name = metric.replace("@", "_at_")
                    mlflow.log_metric(f"{model_name}.{metric_name}_low", value[0])
                    mlflow.log_metric(f"{model_name}.{metric_name}_high", value[1])
                    continue
                mlflow.log_metric(f"{model_name}.{metric.replace('@', '_at_')}", value)
        lead = summary["lead_vs_best_peer"]
        mlflow.log_metric(f"lead_vs_best_peer.ndcg_at_{k}", lead["estimate"])
        mlflow.log_metric("lead_vs_best_peer.ci_low", lead["ci"][0])
        mlflow.log_metric("lead_vs_best_peer.ci_high", lead["ci"][1])
        mlflow.log_artifact(str(models_dir / "metrics.json"))
        client = mlflow.MlflowClient()
        if client.search_registered_models(filter_string=f"name = '{name}'") == []:
            client.create_registered_model(name, description="Level 3 MovieLens recommender")
        versions = {}
        for alias, folder in ((CHAMPION, OURS), (CHALLENGER, CHALLENGER_MODEL)):
            # Plain model folders (NumPy files), registered from the run's artifacts.
            mlflow.log_artifacts(str(models_dir / folder), artifact_path=folder)
            version = client.create_model_version(
                name,
                source=f"{run.info.artifact_uri}/{folder}",
                run_id=run.info.run_id,
                tags={"model": folder},
            ).version
            set_alias(name, alias, version)
            versions[alias] = int(version)
        mlflow.set_tag("ndcg_ours", summary["models"][OURS][f"ndcg@{k}"])
    log.info("registered %s: champion v%s, challenger v%s", name, *versions.values())
    return versions


def export_serving_bundle(settings: Level3Settings, dest: Path) -> dict[str, int]:
    """Download the models the aliases point at into ``dest/<alias>/`` (found by alias only)."""
    mlflow = setup_mlflow(settings.train.experiment)
    name = settings.train.model_name
    versions: dict[str, int] = {}
    dest.mkdir(parents=True, exist_ok=True)
    for alias in (CHAMPION, CHALLENGER):
        version = alias_version(name, alias)
        if version is None:
            if alias == CHALLENGER:
                continue
            raise UsageError(f"no '{alias}' alias on registered model {name}: train first")
        with atomic_dir(dest / alias) as tmp:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}@{alias}", dst_path=str(tmp / "download")
            )
            for item in Path(local).iterdir():
                shutil.move(str(item), tmp / item.name)
            shutil.rmtree(tmp / "download", ignore_errors=True)
            meta = json.loads((tmp / "model.json").read_text())
            meta.update({"version": str(version), "alias": alias, "registered_name": name})
            write_json(tmp / "model.json", meta)
        versions[alias] = version
    make_readable(dest)
    return versions


def make_readable(folder: Path) -> None:
    """Folders 755, files 644: the container's non-root user reads the mounted bundle."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def default_dirs() -> tuple[Path, Path, Path]:
    """``(data, models, serving)`` folders under ``artifacts/level3``."""
    root = level_dir(3)
    return root / "data", root / "models", default_serving_dir()
