"""Stage 4 — train: fit the five models on one split, evaluate, track in MLflow, register.

The project's model is **recency-weighted EASE**: EASE's item-item matrix, with each user's
history weighted ``0.5 ** (position_from_latest / half_life)`` at scoring time. The split is
temporal (the latest positives are held out), so recent taste predicts the held-out items
better than the whole history; the half-life is chosen on a validation split carved out of the
training data the same way (never on the test set). The challenger served in shadow is the
recency-weighted item-kNN.

Both are logged as model folders (see :mod:`bundle`) and registered under one name; aliases
``champion`` and ``challenger`` point at their versions.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from level3_recsys import data as data_stage
from level3_recsys.bundle import UserHistories, default_serving_dir
from level3_recsys.evaluate import evaluate_model
from level3_recsys.models import EASE, ImplicitALS, ImplicitBPR, ItemKNN, ItemToItem, Popularity
from level3_recsys.settings import Level3Settings
from ml_common.atomic import atomic_dir, write_json
from ml_common.logs import get_logger
from ml_common.paths import level_dir
from ml_common.tracking import CHALLENGER, CHAMPION, alias_version, set_alias, setup_mlflow

log = get_logger(__name__)
HALF_LIVES = (2.5, 5.0, 10.0, 20.0, 40.0, 1e9)  # 1e9: no recency weighting at all
OURS, CHALLENGER_MODEL = "ease_recency", "itemknn_recency"


class RecencyWeighted:
    """Score an item-to-item model with recency-weighted user rows instead of binary ones."""

    def __init__(self, base: ItemToItem, weighted_rows: sparse.csr_matrix, name: str) -> None:
        self.base, self.weighted_rows, self.name = base, weighted_rows, name

    def fit(self, interactions: sparse.csr_matrix) -> RecencyWeighted:
        return self

    def score(self, user_rows: sparse.csr_matrix, user_index: np.ndarray) -> np.ndarray:
        return np.asarray(self.weighted_rows[user_index] @ self.base.weights, dtype=np.float32)


def recency_matrix(
    train: pd.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray, half_life: float
) -> sparse.csr_matrix:
    """User x item matrix whose entries are each interaction's recency weight."""
    ordered = train.sort_values(["user_id", "timestamp", "item_id"], ascending=False)
    position = ordered.groupby("user_id").cumcount().to_numpy()
    rows = np.searchsorted(user_ids, ordered["user_id"].to_numpy())
    cols = np.searchsorted(item_ids, ordered["item_id"].to_numpy())
    weights = np.power(0.5, position / half_life).astype(np.float32)
    return sparse.csr_matrix((weights, (rows, cols)), shape=(len(user_ids), len(item_ids)))


def choose_half_life(
    train: pd.DataFrame, item_ids: np.ndarray, settings: Level3Settings
) -> tuple[float, dict[str, float]]:
    """Pick the half-life with the best validation NDCG@k (validation carved from ``train``)."""
    cfg = settings.data
    ordered = train.sort_values(["user_id", "timestamp", "item_id"], ascending=False)
    rank = ordered.groupby("user_id").cumcount()
    size = ordered.groupby("user_id")["item_id"].transform("size")
    eligible = size >= cfg.holdout_per_user + cfg.min_train_per_user
    fit_part = ordered.loc[~eligible | (rank >= cfg.holdout_per_user)]
    valid_part = ordered.loc[eligible & (rank < cfg.holdout_per_user)]
    user_ids = np.sort(fit_part["user_id"].unique())
    x_fit = data_stage.to_matrix(fit_part, user_ids, item_ids)
    x_valid = data_stage.to_matrix(valid_part, user_ids, item_ids)
    ease = EASE(settings.train.ease_lambda).fit(x_fit)
    scores: dict[str, float] = {}
    for half_life in HALF_LIVES:
        weighted = recency_matrix(fit_part, user_ids, item_ids, half_life)
        model = RecencyWeighted(ease, weighted, OURS)
        metrics = evaluate_model(model, x_fit, x_valid, settings.train.k)
        scores[f"{half_life:g}"] = metrics[f"ndcg@{settings.train.k}"]
    best = max(HALF_LIVES, key=lambda h: scores[f"{h:g}"])
    return best, scores


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


def train(settings: Level3Settings, data_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Fit, evaluate, save and register every model; return the metrics (also metrics.json)."""
    t = settings.train
    dataset = data_stage.load_dataset(data_dir)
    train_frame = pd.read_csv(data_dir / "train.csv")
    half_life, validation = choose_half_life(train_frame, dataset.item_ids, settings)
    log.info("recency half-life %.3g chosen on validation (NDCG %s)", half_life, validation)
    weighted = recency_matrix(train_frame, dataset.user_ids, dataset.item_ids, half_life)

    ease = EASE(t.ease_lambda).fit(dataset.train)
    knn = ItemKNN(t.knn_neighbours).fit(dataset.train)
    candidates = {
        "popularity": Popularity().fit(dataset.train),
        "itemknn": knn,
        "als": ImplicitALS(t.als_factors, t.als_iterations, t.als_regularization, settings.seed),
        "bpr": ImplicitBPR(t.bpr_factors, t.bpr_iterations, t.bpr_learning_rate, settings.seed),
        "ease": ease,
        OURS: RecencyWeighted(ease, weighted, OURS),
        CHALLENGER_MODEL: RecencyWeighted(knn, weighted, CHALLENGER_MODEL),
    }
    results: dict[str, dict[str, float]] = {}
    for name, model in candidates.items():
        start = time.perf_counter()
        if name in ("als", "bpr"):
            model.fit(dataset.train)
        results[name] = evaluate_model(model, dataset.train, dataset.test, t.k)
        log.info(
            "%-16s ndcg@%d %.4f  (%.1f s)",
            name,
            t.k,
            results[name][f"ndcg@{t.k}"],
            time.perf_counter() - start,
        )

    histories = user_histories(train_frame, dataset)
    reference = feature_reference(dataset)
    with atomic_dir(out_dir) as tmp:
        save_model_folder(
            tmp / OURS, ease, OURS, half_life, dataset, histories, reference, results[OURS]
        )
        save_model_folder(
            tmp / CHALLENGER_MODEL,
            knn,
            CHALLENGER_MODEL,
            half_life,
            dataset,
            histories,
            reference,
            results[CHALLENGER_MODEL],
        )
        summary = {
            "k": t.k,
            "half_life": half_life,
            "validation_ndcg_by_half_life": validation,
            "models": results,
            "protocol": (
                f"ratings>={settings.data.min_rating} positives; items with "
                f">={settings.data.min_item_positives} positives; each user's "
                f"{settings.data.holdout_per_user} latest positives held out; full ranking, "
                "seen items excluded"
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


def flat_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """``{model: {ndcg@10, recall@10, map@10, coverage}}`` for ``dvc metrics show``."""
    k = summary["k"]
    keys = (f"ndcg@{k}", f"recall@{k}", f"map@{k}", "coverage")
    return {name: {key: m[key] for key in keys} for name, m in summary["models"].items()}


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
                "half_life": summary["half_life"],
            }
        )
        for model_name, metrics in summary["models"].items():
            for metric, value in metrics.items():
                mlflow.log_metric(f"{model_name}.{metric.replace('@', '_at_')}", value)
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
            raise RuntimeError(f"no '{alias}' alias on registered model {name}: train first")
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
