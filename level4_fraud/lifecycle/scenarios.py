"""``python -m level4_fraud scenarios``: the drift replay on a matrix of worlds, not one scenario.

Fraud cases: drift kind (card testing, a compromised-terminal wave, account takeover, fraud
amounts shifted into the legitimate range) × volume {1, ½, ¼} × seasonal change on/off × world
seed; controls: per seed, worlds with harmless changes only (none, seasonal spending, a new
merchant group, both), where every alarm is a false one. Each case is a full replay
(:func:`level4_fraud.lifecycle.replay.run_replay`: champion, alarm tests, retraining flow, gate,
promotion) in a smaller world (``world_customers`` customers) whose drift events come from the
case's settings: nothing is patched.

The monitor's settings are chosen on ``tuning_seeds`` (``--seeds tuning``) and the figures are
reported on ``eval_seeds`` (the default), never used for tuning.

Per case: alarm delay, which test fired, false alarms (alarms outside every fraud event), AP
before the drift, AP while it runs unfixed, days to recovery. Summary (bench keys): see
:func:`summarise_matrix`. Outputs in ``artifacts/level4/scenarios/``: ``cases.json``,
``table.md`` (a table per kind), ``matrix.png`` (a panel per kind), ``config.json`` and each
case's log in ``logs/``.

What one case is lives in :func:`run_case`, a module-level function of a JSON-able params dict;
the shared runner (:mod:`ml_common.matrix`, config ``scenarios.matrix``) runs them as one Prefect
flow on Dask, each case in a fresh process with its own throw-away MLflow registry and artifacts
folder: a case's promotions cannot move another case's ``@champion`` or the level's own
registry, and the figures do not depend on the number of workers or on the order cases finish
in (each case seeds its own world and models).
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import numpy as np

from level4_fraud.config import DriftEvent, Level4Settings, ScenarioMatrixConfig
from ml_common.atomic import atomic_dir, write_json, write_text
from ml_common.paths import level_dir

log = logging.getLogger(__name__)
VOLUME_KEYS = {1.0: "vol_1", 0.5: "vol_half", 0.25: "vol_quarter"}


def case_events(m: ScenarioMatrixConfig, case: dict[str, Any]) -> list[DriftEvent]:
    """The drift events of one case's world."""
    events = []
    if case["kind"] not in (None, "none", "new_merchants"):
        events.append(DriftEvent(kind=case["kind"], start_day=m.drift_day, volume=case["volume"]))
    if case["seasonal"]:
        events.append(DriftEvent(kind="seasonal", start_day=m.seasonal_day))
    if case["kind"] == "new_merchants":
        events.append(DriftEvent(kind="new_merchants", start_day=m.new_merchants_day))
    return events


def case_settings(
    base: Level4Settings, m: ScenarioMatrixConfig, case: dict[str, Any]
) -> Level4Settings:
    """The replay settings of one case (the level's settings with the case's world swapped in)."""
    simulation = base.simulation.model_copy(
        update={
            "seed": case["seed"],
            "n_customers": m.world_customers,
            "n_terminals": m.world_terminals,
            "n_days": m.n_days,
            "seasonal_day": None,
            "new_pattern_day": None,
            "drift_events": case_events(m, case),
        }
    )
    return base.model_copy(
        update={
            "simulation": simulation,
            "replay": base.replay.model_copy(
                update={
                    "first_train_day": m.first_train_day,
                    "first_train_days": m.first_train_days,
                    "monitor_start_day": m.monitor_start_day,
                }
            ),
            "retrain": base.retrain.model_copy(update={"train_days": m.retrain_train_days}),
            "torch": base.torch.model_copy(update={"epochs": m.torch_epochs, "num_threads": 1}),
            "lightgbm": base.lightgbm.model_copy(update={"n_estimators": m.lightgbm_estimators}),
            "model_name": f"{base.model_name}-scenarios",
            "use_feast": False,
        }
    )


def matrix_cases(m: ScenarioMatrixConfig, seeds: list[int] | None = None) -> dict[str, dict]:
    """Every case of the matrix, by key: ``{seed, seasonal, kind, volume}``.

    Fraud cases first (kind × volume × seasonal × seed), then the harmless controls per seed
    (``kind`` ``none`` or ``new_merchants``, ``volume`` 0)."""
    seeds = m.eval_seeds if seeds is None else seeds
    cases: dict[str, dict] = {}
    for kind, volume, seasonal, seed in itertools.product(m.kinds, m.volumes, m.seasonal, seeds):
        key = f"{kind}-v{volume:g}-{'seasonal' if seasonal else 'flat'}-seed{seed}"
        cases[key] = {"seed": seed, "seasonal": seasonal, "kind": kind, "volume": volume}
    controls = {
        "none": ("none", False),
        "seasonal": ("none", True),
        "new_merchants": ("new_merchants", False),
        "both": ("new_merchants", True),
    }
    for control, seed in itertools.product(m.controls, seeds):
        kind, seasonal = controls[control]
        cases[f"control-{control}-seed{seed}"] = {
            "seed": seed,
            "seasonal": seasonal,
            "kind": kind,
            "volume": 0.0,
        }
    return cases


def run_case(params: dict[str, Any]) -> dict[str, Any]:
    """Replay one case; return its row of the matrix.

    Args:
        params: ``{"case": {seed, seasonal, kind, volume}, "base": the level's settings as
            plain data, "matrix": the matrix settings as plain data, "out": a folder}``.
    """
    from level4_fraud.config import FRAUD_KINDS
    from level4_fraud.lifecycle.replay import run_replay

    base = Level4Settings(**params["base"])
    m = ScenarioMatrixConfig(**params["matrix"])
    case = params["case"]
    settings = case_settings(base, m, case)
    # The shared runner gives each case its own ML_ARTIFACTS_DIR: the replay writes there.
    out = Path(params["out"]) if "out" in params else level_dir(4) / "replay"
    result = run_replay(settings, out, progress=False)
    s = result["summary"]
    delay = s["alarm_delay_days"]
    fraud = case["kind"] in FRAUD_KINDS
    return {
        **case,
        "fraud": fraud,
        "alarm_delay_days": delay,
        "alarm_by": s["alarm_by"],
        "detected_in_time": fraud and delay is not None and delay <= m.detect_within_days,
        "false_alarms": s["false_alarms_stable"] + s["false_alarms_harmless"],
        "days_without_pattern": s["days_without_pattern"],
        "drift_payments_per_day": _mean_pattern(result["days"]),
        "ap_before": s["ap_before_drift"],
        "ap_unfixed": s["ap_drift_unfixed"],
        "ap_lost_unfixed": (
            s["ap_before_drift"] - s["ap_drift_unfixed"]
            if s["ap_drift_unfixed"] is not None and s["ap_before_drift"] is not None
            else None
        ),
        "fix_day": s["fix_day"],
        "fixed_by": s["fixed_by"],
        "days_to_recovery": s["days_to_recovery"],
        "promotions": s["promotions"],
    }


def _mean_pattern(days: list[dict[str, Any]]) -> float | None:
    values = [d["n_drift_fraud"] for d in days if d["period"] == "fraud_drift"]
    return float(np.mean(values)) if values else None


def _median(delays: list[int | None]) -> float | None:
    fired = [d for d in delays if d is not None]
    return float(np.median(fired)) if fired else None


def _share(rows: list[dict[str, Any]]) -> float | None:
    return sum(r["detected_in_time"] for r in rows) / len(rows) if rows else None


def summarise_matrix(rows: list[dict[str, Any]], m: ScenarioMatrixConfig) -> dict[str, Any]:
    """The bench keys of the matrix.

    ``detected_within_7d_share_vol_*``: fraud cases at that volume (all kinds and seeds)
    alarmed within ``detect_within_days``; ``detected_share_by_kind``: the same per kind (all
    volumes); ``false_alarms_per_1000d``: alarms outside every fraud event per 1,000 such
    monitored days, controls included; ``ap_lost_unfixed_mean``: AP before the drift minus AP
    while it runs unfixed, averaged over the fraud cases.
    """
    fraud = [r for r in rows if r["fraud"]]
    false_alarms = sum(r["false_alarms"] for r in rows)
    days = sum(r["days_without_pattern"] for r in rows)
    lost = [r["ap_lost_unfixed"] for r in fraud if r["ap_lost_unfixed"] is not None]
    summary: dict[str, Any] = {
        "scenario_cases": len(rows),
        "fraud_cases": len(fraud),
        "control_cases": len(rows) - len(fraud),
        "drift_kinds": sorted({r["kind"] for r in fraud}),
    }
    for volume, key in VOLUME_KEYS.items():
        summary[f"detected_within_7d_share_{key}"] = _share(
            [r for r in fraud if r["volume"] == volume]
        )
    summary["detected_share_by_kind"] = {
        kind: _share([r for r in fraud if r["kind"] == kind])
        for kind in sorted({r["kind"] for r in fraud})
    }
    summary["alarms_by_kind_and_volume"] = {
        f"{kind}@{volume:g}": {
            "alarmed": sum(r["alarm_delay_days"] is not None for r in group),
            "in_time": sum(r["detected_in_time"] for r in group),
            "cases": len(group),
            "median_delay_days": _median([r["alarm_delay_days"] for r in group]),
            "fired_by": sorted({r["alarm_by"] for r in group if r["alarm_by"]}),
        }
        for kind in sorted({r["kind"] for r in fraud})
        for volume in sorted({r["volume"] for r in fraud}, reverse=True)
        if (group := [r for r in fraud if r["kind"] == kind and r["volume"] == volume])
    }
    summary.update(
        {
            "false_alarms": false_alarms,
            "monitored_days_outside_fraud": days,
            "false_alarms_per_1000d": 1000 * false_alarms / days if days else None,
            "ap_lost_unfixed_mean": float(np.mean(lost)) if lost else None,
            "days_to_recovery_median": _median([r["days_to_recovery"] for r in fraud]),
        }
    )
    return summary


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A table per drift kind (one line per case), then the controls."""

    def fmt(value: Any) -> str:
        if value is None:
            return "—"
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    header = [
        "| seed | seasonal | volume | drift payments/day | alarm delay | fired by | false "
        "alarms | AP before | AP unfixed | AP lost | fixed on day | days to recovery |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines: list[str] = []
    for kind in dict.fromkeys(r["kind"] for r in rows):
        group = [r for r in rows if r["kind"] == kind]
        title = kind if group[0]["fraud"] else f"control: {kind} (harmless only)"
        lines += ["", f"### {title}", "", *header]
        for r in group:
            delay = "no alarm" if r["fraud"] and r["alarm_delay_days"] is None else None
            lines.append(
                f"| {r['seed']} | {'on' if r['seasonal'] else 'off'} | "
                f"{r['volume'] if r['fraud'] else '—'} | {fmt(r['drift_payments_per_day'])} | "
                f"{delay or fmt(r['alarm_delay_days'])} | {r['alarm_by'] or '—'} | "
                f"{r['false_alarms']} | {fmt(r['ap_before'])} | {fmt(r['ap_unfixed'])} | "
                f"{fmt(r['ap_lost_unfixed'])} | {fmt(r['fix_day'])} | "
                f"{fmt(r['days_to_recovery'])} |"
            )
    return "\n".join(lines).lstrip() + "\n"


def matrix_figure(rows: list[dict[str, Any]], m: ScenarioMatrixConfig, path: Path) -> None:
    """A panel per fraud kind: alarm delay per volume (a red cross at the top: no alarm)."""
    import matplotlib.pyplot as plt

    from ml_common.plots import save_figure

    kinds = list(dict.fromkeys(r["kind"] for r in rows if r["fraud"]))
    fig, axes = plt.subplots(1, max(1, len(kinds)), figsize=(4 * max(1, len(kinds)), 3.6))
    axes = np.atleast_1d(axes)
    ceiling = m.n_days - m.drift_day
    rng = np.random.default_rng(0)
    for ax, kind in zip(axes, kinds, strict=False):
        for r in (r for r in rows if r["kind"] == kind):
            x = r["volume"] * (1 + rng.uniform(-0.08, 0.08))  # jitter: cases do not hide
            color = "tab:green" if r["seasonal"] else "tab:blue"
            if r["alarm_delay_days"] is None:
                ax.scatter(x, ceiling, marker="x", color="red", s=50)
            else:
                ax.scatter(x, r["alarm_delay_days"], color=color, alpha=0.8)
        ax.axhline(m.detect_within_days, color="gray", ls=":")
        ax.set_xscale("log", base=2)
        ax.set_title(kind, fontsize=10)
        ax.set_xlabel("volume (1 = the kind's default)")
    axes[0].set_ylabel("alarm delay (days); red x: no alarm")
    fig.suptitle("blue: seasonal off · green: seasonal on · dotted: 7 days", fontsize=9)
    save_figure(fig, path)


def run_matrix(
    base: Level4Settings,
    m: ScenarioMatrixConfig,
    out_dir: Path | None = None,
    seeds: list[int] | None = None,
    address: str | None = None,
) -> dict[str, Any]:
    """Run every case on the shared matrix runner (:func:`ml_common.matrix.run_matrix`, each case
    in its own process with its own artifacts folder and MLflow registry) on ``seeds`` (default:
    the evaluation seeds); write the tables, picture and JSON; return ``{summary, cases}``.
    A failed case is written down (``failed_cases``) and then raises."""
    from ml_common.config import dump_settings
    from ml_common.matrix import run_matrix as run_cases

    out_dir = out_dir or level_dir(4) / "scenarios"
    cases = matrix_cases(m, seeds)
    common = {"base": dump_settings(base), "matrix": m.model_dump(mode="json")}
    params = {key: {**common, "case": case} for key, case in cases.items()}
    log.info("scenario matrix: %d cases", len(cases))
    with atomic_dir(out_dir) as tmp:
        result = run_cases(
            run_case,
            params,
            m.matrix,
            name="level4-scenarios",
            address=address,
            log_dir=tmp / "logs",
        )
        done = [result.rows[key] for key in cases if key in result.rows]
        summary = summarise_matrix(done, m)
        summary["seeds"] = sorted({c["seed"] for c in cases.values()})
        summary["failed_cases"] = dict(result.failed)
        summary["matrix_seconds"] = result.seconds
        write_json(
            tmp / "cases.json",
            {"summary": summary, "cases": {k: result.rows[k] for k in cases if k in result.rows}},
        )
        write_text(tmp / "table.md", markdown_table(done))
        write_json(tmp / "config.json", {"matrix": m.model_dump(), "base": dump_settings(base)})
        if done:
            matrix_figure(done, m, tmp / "matrix.png")
    result.raise_if_failed()  # after the outputs: they say which cases failed
    return {"summary": summary, "cases": done}
