"""Stage 5 — batch: the nightly Prefect flow that precomputes every user's top-N.

``nightly_batch`` exports the champion from the registry (by alias), scores every known user
with it and writes the lists into the serving store (sqlite by default, Redis by config). The
schedule is a Prefect deployment (:func:`nightly_deployment`, cron from ``batch.cron``); serve it
with ``python -m level3_recsys batch --serve-schedule`` (a long-running process that runs the flow
at each cron tick) or register it on a Prefect server. ``drift_report`` is the batch job that turns
the live feature window of the running service into an Evidently HTML report.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task

from level3_recsys.bundle import ItemScorer, UserHistories
from level3_recsys.settings import Level3Settings
from level3_recsys.store import open_store
from level3_recsys.train import export_serving_bundle, make_readable
from ml_common.atomic import write_json
from ml_common.cli import UsageError


def precompute(scorer: ItemScorer, histories: UserHistories, top_n: int) -> list[tuple[int, list]]:
    """Top-``top_n`` item ids for every user in ``histories`` (their own items excluded)."""
    lists = []
    for user_id in histories.user_ids:
        history = histories.get(int(user_id))
        lists.append((int(user_id), scorer.to_ids(scorer.score_items(history, top_n))))
    return lists


@task
def export_champion(settings: Level3Settings, serving_dir: Path) -> dict[str, int]:
    return export_serving_bundle(settings, serving_dir)


@task
def score_all_users(serving_dir: Path, top_n: int) -> tuple[str, list[tuple[int, list]]]:
    scorer = ItemScorer.load(serving_dir / "champion")
    histories = UserHistories.load(serving_dir / "champion" / "users.npz")
    return scorer.version, precompute(scorer, histories, top_n)


@task
def write_store(
    settings: Level3Settings, serving_dir: Path, version: str, lists: list[tuple[int, list]]
) -> int:
    store = open_store(settings.store, serving_dir / "store.sqlite")
    try:
        return store.put_many(lists, version)
    finally:
        store.close()


@flow(name="level3-nightly-batch")
def nightly_batch(settings: Level3Settings, serving_dir: Path, export: bool = True) -> dict:
    """Export the champion by alias, score every user, fill the store. Returns a summary."""
    logger = get_run_logger()
    versions = export_champion(settings, serving_dir) if export else {}
    version, lists = score_all_users(serving_dir, settings.batch.top_n)
    written = write_store(settings, serving_dir, version, lists)
    logger.info(
        "wrote %d lists (model v%s) to the %s store", written, version, settings.store.backend
    )
    summary = {
        "users": written,
        "model_version": version,
        "versions": versions,
        "backend": settings.store.backend,
        "top_n": settings.batch.top_n,
    }
    write_json(serving_dir / "batch.json", summary)
    make_readable(serving_dir)
    return summary


def nightly_deployment(settings: Level3Settings, serving_dir: Path) -> Any:
    """The flow as a Prefect deployment on the nightly cron schedule (``batch.cron``)."""
    return nightly_batch.to_deployment(
        name="level3-nightly",
        cron=settings.batch.cron,
        parameters={"settings": settings.model_dump(mode="json"), "serving_dir": str(serving_dir)},
        tags=["level3", "batch"],
        description="Precompute every user's top-N with the champion into the serving store.",
    )


def fetch_live_features(base_url: str, token: str) -> dict[str, list[float]]:
    """The running service's live feature window (admin endpoint)."""
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/admin/features", headers={"X-Admin-Token": token}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (local URL)
        return json.loads(response.read())["features"]


def drift_report(
    reference: dict[str, list[float]], current: dict[str, list[float]], out_html: Path
) -> dict[str, Any]:
    """Evidently data-drift report of live features against the training reference."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    columns = [c for c in reference if len(current.get(c, [])) > 0]
    if not columns:
        raise UsageError("no live feature values yet: send some requests to the service first")
    rng = np.random.default_rng(0)

    def frame(source: dict[str, list[float]], n: int) -> pd.DataFrame:
        return pd.DataFrame({c: rng.choice(np.asarray(source[c], dtype=float), n) for c in columns})

    # Evidently compares columns of one table; features have different counts, so resample.
    reference_frame = frame(reference, 2000)
    current_frame = frame(current, max(min(len(current[c]) for c in columns), 50))
    report = Report([DataDriftPreset()])
    snapshot = report.run(current_data=current_frame, reference_data=reference_frame)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(out_html))
    result = snapshot.dict()
    summary = {"columns": columns, "html": str(out_html), "metrics": result.get("metrics", [])[:1]}
    write_json(out_html.with_suffix(".json"), result)
    return summary


@flow(name="level3-drift-report")
def drift_report_flow(
    settings: Level3Settings, base_url: str, serving_dir: Path, out_html: Path, admin_token: str
) -> dict[str, Any]:
    """Batch job: the running service's live features vs the champion's training reference.
    ``admin_token`` opens the service's admin route (the caller resolves it: the deployed
    service's token lives with ``deploy``, which imports this module, not the reverse)."""
    current = fetch_live_features(base_url, admin_token)
    reference = json.loads((serving_dir / "champion" / "reference.json").read_text())
    return drift_report(reference, current, out_html)
