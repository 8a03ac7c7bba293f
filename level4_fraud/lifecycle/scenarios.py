"""``python -m level4_fraud scenarios``: the drift replay on a matrix of worlds, not one scenario.

Cases: seeds × new-pattern day × pattern volume {1, ½, ¼} × seasonal change on/off, plus a
no-pattern case per seed and seasonal setting (where every alarm is a false one). Each case is a
full replay (:func:`level4_fraud.lifecycle.replay.run_replay`: champion, CUSUM alarm, retraining
flow, gate, promotion) in a smaller world so the matrix fits a CPU (``world_customers`` customers),
and the pattern's **volume 1** is the default world's share of traffic (6 tested cards a day per
5,000 customers), so ½ and ¼ are what the detector would face at half and a quarter of that burst.

Per case: alarm delay, false alarms (alarms on days without the pattern), AP before the pattern,
AP while it runs unfixed, the fix day. Summary (bench keys): ``scenario_cases``,
``scenario_detected_share`` (pattern cases with an alarm within ``detect_within_days``),
``scenario_false_alarms_per_100d`` (per 100 monitored days without the pattern),
``min_detectable_volume`` (smallest volume at which every case was detected in time; ``None`` if
none). Outputs in ``artifacts/level4/scenarios/``: ``cases.json``, ``table.md``, ``matrix.png``,
``config.json`` and each case's log in ``logs/``.

Cases are independent (each seeds its own world and models), so ``workers`` of them run at once,
each in a fresh process with its own throw-away MLflow registry and artifacts folder: a case's
promotions cannot move another case's ``@champion`` or the level's own registry, and the figures
do not depend on the number of workers or on the order cases finish in.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from level4_fraud.config import Level4Settings, ScenarioMatrixConfig
from ml_common.atomic import atomic_dir, write_json, write_text
from ml_common.paths import level_dir

log = logging.getLogger(__name__)
DEFAULT_CARDS_PER_5000_CUSTOMERS = 6.0


def case_settings(
    base: Level4Settings,
    m: ScenarioMatrixConfig,
    seed: int,
    seasonal: bool,
    pattern_day: int | None,
    volume: float,
) -> Level4Settings:
    """The replay settings of one case (the level's settings with the matrix world swapped in)."""
    cards = DEFAULT_CARDS_PER_5000_CUSTOMERS * m.world_customers / 5000 * volume
    simulation = base.simulation.model_copy(
        update={
            "seed": seed,
            "n_customers": m.world_customers,
            "n_terminals": m.world_terminals,
            "n_days": m.n_days,
            "seasonal_day": m.seasonal_day if seasonal else None,
            "new_pattern_day": pattern_day,
            "new_pattern_cards_per_day": cards,
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


def matrix_cases(m: ScenarioMatrixConfig) -> list[dict[str, Any]]:
    """Every case of the matrix as ``{seed, seasonal, pattern_day, volume}``."""
    cases = []
    for seed, seasonal in itertools.product(m.seeds, m.seasonal):
        if m.include_no_pattern:
            cases.append({"seed": seed, "seasonal": seasonal, "pattern_day": None, "volume": 0.0})
        for day, volume in itertools.product(m.pattern_days, m.volumes):
            cases.append({"seed": seed, "seasonal": seasonal, "pattern_day": day, "volume": volume})
    return cases


def run_case(
    base: Level4Settings, m: ScenarioMatrixConfig, case: dict[str, Any], out: Path
) -> dict[str, Any]:
    """Replay one case; return its row of the matrix."""
    from level4_fraud.lifecycle.replay import run_replay

    settings = case_settings(base, m, **case)
    result = run_replay(settings, out, progress=False)
    s = result["summary"]
    no_pattern_days = s["days_without_pattern"]
    delay = s["alarm_delay_days"]
    row = {
        **case,
        "alarm_delay_days": delay,
        "alarm_by": s["alarm_by"],
        "detected_in_time": delay is not None and delay <= m.detect_within_days,
        "false_alarms": s["false_alarms_stable"] + s["false_alarms_seasonal"],
        "days_without_pattern": no_pattern_days,
        "pattern_payments_per_day": _mean_pattern(result["days"]),
        "ap_before": s["ap_before_drift"],
        "ap_unfixed": s["ap_drift_unfixed"],
        "ap_lost_unfixed": (
            s["ap_before_drift"] - s["ap_drift_unfixed"]
            if s["ap_drift_unfixed"] is not None and s["ap_before_drift"] is not None
            else None
        ),
        "fix_day": s["fix_day"],
        "fixed_by": s["fixed_by"],
        "promotions": s["promotions"],
    }
    return row


def _mean_pattern(days: list[dict[str, Any]]) -> float | None:
    values = [d["n_new_pattern"] for d in days if d["period"] == "new_pattern"]
    return float(np.mean(values)) if values else None


def _median(delays: list[int | None]) -> float | None:
    fired = [d for d in delays if d is not None]
    return float(np.median(fired)) if fired else None


def summarise_matrix(rows: list[dict[str, Any]], m: ScenarioMatrixConfig) -> dict[str, Any]:
    """The bench keys of the matrix."""
    pattern = [r for r in rows if r["pattern_day"] is not None]
    detected = [r for r in pattern if r["detected_in_time"]]
    false_alarms = sum(r["false_alarms"] for r in rows)
    days = sum(r["days_without_pattern"] for r in rows)
    by_volume = {
        v: all(r["detected_in_time"] for r in pattern if r["volume"] == v)
        for v in sorted({r["volume"] for r in pattern})
    }
    # The smallest volume from which every larger tested volume is detected in every case.
    minimum = None
    for volume in sorted(by_volume, reverse=True):
        if not by_volume[volume]:
            break
        minimum = volume
    alarmed = {  # an alarm at all, however late, and the median delay where one fired
        str(v): {
            "alarmed": sum(r["alarm_delay_days"] is not None for r in pattern if r["volume"] == v),
            "cases": sum(r["volume"] == v for r in pattern),
            "median_delay_days": _median(
                [r["alarm_delay_days"] for r in pattern if r["volume"] == v]
            ),
        }
        for v in sorted({r["volume"] for r in pattern})
    }
    return {
        "scenario_cases": len(rows),
        "scenario_detected_share": len(detected) / len(pattern) if pattern else None,
        "scenario_false_alarms_per_100d": 100 * false_alarms / days if days else None,
        "min_detectable_volume": minimum,
        "detected_by_volume": {str(v): ok for v, ok in by_volume.items()},
        "alarms_by_volume": alarmed,
        "monitored_days_without_pattern": days,
        "false_alarms": false_alarms,
    }


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """One line per case."""

    def fmt(value: Any) -> str:
        if value is None:
            return "—"
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = [
        "| seed | seasonal | pattern day | volume | pattern payments/day | alarm delay | false "
        "alarms | AP before | AP unfixed | AP lost | fixed on day |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        delay = (
            "no alarm"
            if r["pattern_day"] is not None and r["alarm_delay_days"] is None
            else (fmt(r["alarm_delay_days"]))
        )
        lines.append(
            f"| {r['seed']} | {'on' if r['seasonal'] else 'off'} | {fmt(r['pattern_day'])} | "
            f"{r['volume'] if r['pattern_day'] is not None else '—'} | "
            f"{fmt(r['pattern_payments_per_day'])} | {delay} | {r['false_alarms']} | "
            f"{fmt(r['ap_before'])} | {fmt(r['ap_unfixed'])} | {fmt(r['ap_lost_unfixed'])} | "
            f"{fmt(r['fix_day'])} |"
        )
    return "\n".join(lines) + "\n"


def matrix_figure(rows: list[dict[str, Any]], m: ScenarioMatrixConfig, path: Path) -> None:
    """Alarm delay and AP lost per pattern volume; a cross at the top where no alarm fired."""
    import matplotlib.pyplot as plt

    from ml_common.plots import save_figure

    pattern = [r for r in rows if r["pattern_day"] is not None]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ceiling = m.n_days - min(m.pattern_days)
    rng = np.random.default_rng(0)
    for r in pattern:
        x = r["volume"] * (1 + rng.uniform(-0.06, 0.06))  # jitter so cases do not hide each other
        color = "tab:green" if r["seasonal"] else "tab:blue"
        if r["alarm_delay_days"] is None:
            ax1.scatter(x, ceiling, marker="x", color="red", s=60)
        else:
            ax1.scatter(x, r["alarm_delay_days"], color=color, alpha=0.8)
        if r["ap_lost_unfixed"] is not None:
            ax2.scatter(x, r["ap_lost_unfixed"], color=color, alpha=0.8)
    ax1.axhline(m.detect_within_days, color="gray", ls=":", label=f"{m.detect_within_days} days")
    ax1.set_xscale("log", base=2)
    ax2.set_xscale("log", base=2)
    for ax in (ax1, ax2):
        ax.set_xlabel("pattern volume (1 = default burst's share of traffic)")
    ax1.set_ylabel("alarm delay (days); red x: no alarm")
    ax2.set_ylabel("AP before the pattern − AP while unfixed")
    ax1.set_title("blue: seasonal off · green: seasonal on", fontsize=9)
    ax1.legend(fontsize=8)
    save_figure(fig, path)


def _run_isolated_case(
    base: Level4Settings,
    m: ScenarioMatrixConfig,
    case: dict[str, Any],
    scratch: Path,
    log_path: Path,
) -> dict[str, Any]:
    """:func:`run_case` in a worker process, with MLflow and artifacts inside ``scratch`` and the
    case's own output (MLflow's registration chatter included) in ``log_path``."""
    from ml_common.logs import setup_logging

    (scratch / "artifacts").mkdir(parents=True, exist_ok=True)
    os.environ["ML_ARTIFACTS_DIR"] = str(scratch / "artifacts")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch / 'artifacts' / 'mlflow.db'}"
    with open(log_path, "w") as log_file:  # the worker's stdout and stderr, at the descriptors
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
    setup_logging()
    log.info("case %s", case)
    return run_case(base, m, case, scratch / "replay")


def run_matrix(
    base: Level4Settings, m: ScenarioMatrixConfig, out_dir: Path | None = None
) -> dict[str, Any]:
    """Run every case (``m.workers`` at once); write the table, picture and JSON; return
    ``{summary, cases}``."""
    from ml_common.config import dump_settings

    out_dir = out_dir or level_dir(4) / "scenarios"
    cases = matrix_cases(m)
    rows: dict[int, dict[str, Any]] = {}  # by case index: cases finish in any order
    # "spawn": a fresh interpreter per worker, no forked torch/OpenMP thread state.
    context = multiprocessing.get_context("spawn")
    with (
        atomic_dir(out_dir) as tmp,
        tempfile.TemporaryDirectory() as scratch,
        ProcessPoolExecutor(min(m.workers, len(cases)), mp_context=context) as pool,
        tqdm(total=len(cases), desc="scenario matrix", unit="case") as bar,
    ):
        log.info("scenario matrix: %d cases, %d at once", len(cases), m.workers)
        (tmp / "logs").mkdir()
        futures = {
            pool.submit(
                _run_isolated_case,
                base,
                m,
                case,
                Path(scratch) / f"case{i}",
                tmp / "logs" / f"case{i + 1}.log",
            ): i
            for i, case in enumerate(cases)
        }
        for future in as_completed(futures):
            i = futures[future]
            rows[i] = row = future.result()
            bar.update()
            log.info(
                "case %d/%d done: %s → alarm delay %s, false alarms %d",
                i + 1,
                len(cases),
                cases[i],
                row["alarm_delay_days"],
                row["false_alarms"],
            )
        done = [rows[i] for i in range(len(cases))]
        summary = summarise_matrix(done, m)
        write_json(tmp / "cases.json", {"summary": summary, "cases": done})
        write_text(tmp / "table.md", markdown_table(done))
        write_json(tmp / "config.json", {"matrix": m.model_dump(), "base": dump_settings(base)})
        matrix_figure(done, m, tmp / "matrix.png")
    return {"summary": summary, "cases": done}
