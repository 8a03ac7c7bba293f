"""``python -m level4_fraud bench``: every level-4 figure into ``artifacts/bench/level4.json``.

Part 1 measures, in one run on the configured simulation:

- the handbook protocol (train period, delay, test week): ensemble ``ap``, ``auc``, ``cp100`` and
  the LightGBM baseline alone (``lgbm_ap``, ``lgbm_cp100``);
- the handbook's exact protocol (``training/handbook.py``, also ``python -m level4_fraud
  handbook``: 7 days train, 7 delay, 7 test, known-compromised cards removed): ours trained on
  the handbook's 7 days (``handbook_ap``, ``handbook_cp100``) and the best AP of its baseline
  models in the same run (``handbook_peer_best_ap``);
- the replay: ``alarm_delay_days``, ``false_alarms_stable``, ``false_alarms_harmless``,
  ``ap_recovery_ratio``, ``promotions``;
- the scenario matrix (``lifecycle/scenarios.py``, also ``python -m level4_fraud scenarios``):
  ``drift_kinds``, ``eval_seeds``, ``scenario_cases``, ``detected_within_7d_share_vol_1`` /
  ``_vol_half`` / ``_vol_quarter``, ``detected_share_by_kind``, ``false_alarms_per_1000d``,
  ``ap_lost_unfixed_mean`` (on the evaluation seeds, never used for tuning);
- the Feast training join keeps every payment (``feast_join_rows_match``: rows in = rows out on
  the protocol's training days);
- a bounded load test of the scoring service on 127.0.0.1 with the replay's final champion and
  Feast online store: ``scoring_p50_ms``, ``scoring_p99_ms``; and ``serve.concurrent_requests``
  (500) requests at once against ``python -m level4_fraud serve`` with ``serve.workers``
  processes: ``concurrent_500_p99_ms``;
- lineage: the replay's final ``@champion`` exported from the registry to ONNX and served by the
  ONNX tier over HTTP answers exactly (1e-5) what the registered ensemble scores on a fixed batch
  (``deployed_matches_champion``); the alert rules unit-tested firing and not firing by promtool
  (``alert_rules_tested``; ``null`` with ``alert_rules_tested_not_measured`` saying why when
  promtool, Debian's package prometheus, is not installed).

Part 2's ``industrial.industrial_bench()`` keys are then merged in. The JSON is rewritten after
every stage (``ml_common.bench.BenchRun``), so a stage that fails loses only what follows it.
Details of each stage go to ``artifacts/level4/bench/`` (protocol.json, replay outputs, and
``tables.md``: the README's part-1 tables rendered from this run's files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from level4_fraud.config import Level4Settings
from ml_common.atomic import write_json, write_text
from ml_common.bench import BenchRun, optional_figure
from ml_common.config import dump_settings
from ml_common.paths import level_dir


def _round(value: Any, digits: int = 4) -> Any:
    return round(value, digits) if isinstance(value, float) else value


def scoring_latency(settings: Level4Settings) -> dict[str, float]:
    """Load-test the service as ``serve`` runs it: the registered champion, the online store."""
    from level4_fraud.data.simulate import TransactionSimulator
    from level4_fraud.serving.service import create_app, default_state, load_test

    app = create_app(lambda: default_state(settings))
    next_day = TransactionSimulator(settings.simulation).day(settings.simulation.n_days)
    return load_test(app, next_day, settings.serve.load_test_requests)


def concurrent_latency(settings: Level4Settings, config_path: Path) -> dict[str, float]:
    """``serve.concurrent_requests`` requests at once against the ``serve`` command as it runs
    (``serve.workers`` uvicorn processes, the registered champion, the online store)."""
    from level4_fraud.data.simulate import TransactionSimulator
    from level4_fraud.serving.service import ServiceProcess, concurrent_load_test, payloads_of

    next_day = TransactionSimulator(settings.simulation).day(settings.simulation.n_days)
    payloads = payloads_of(next_day.head(settings.serve.concurrent_requests))
    with ServiceProcess(settings, config_path) as service:
        result = concurrent_load_test(service.url, payloads)
    return {**result, "workers": settings.serve.workers}


def feast_join_rows_match(settings: Level4Settings) -> bool:
    """Whether the Feast point-in-time join returns one row per payment, in order, with the
    streaming builder's features, on the protocol's training days (its own offline store in a
    scratch folder: the figure does not depend on what ran before)."""
    import tempfile

    import numpy as np
    import pandas as pd

    from level4_fraud.data.feature_store import SnapshotWriter, open_store, training_frame
    from level4_fraud.data.features import FEATURES
    from level4_fraud.data.protocol import new_builder
    from level4_fraud.data.simulate import TransactionSimulator

    p = settings.protocol
    sim = TransactionSimulator(settings.simulation)
    builder = new_builder(settings.simulation, p.delay_days)
    with tempfile.TemporaryDirectory() as root:
        writer = SnapshotWriter(Path(root))
        raw, built = [], []
        for day in range(p.train_start_day + p.train_days):
            writer.add_day(builder, day)
            frame = sim.day(day)
            if day >= p.train_start_day:
                raw.append(frame)
                built.append(builder.transform_day(frame))
            else:
                builder.record_day(frame, day)
        writer.flush()
        payments = pd.concat(raw, ignore_index=True)
        joined = training_frame(open_store(Path(root)), payments)
    expected = pd.concat(built, ignore_index=True)
    return bool(
        len(joined) == len(payments)
        and joined["tx_id"].tolist() == payments["tx_id"].tolist()
        and np.allclose(joined[FEATURES].to_numpy(float), expected[FEATURES].to_numpy(float))
    )


def deployed_matches_champion(settings: Level4Settings, rows: int = 512) -> dict[str, Any]:
    """Export ``@champion`` from the registry, serve it with the ONNX tier over HTTP (the code and
    bundle the scoring image runs) and compare its answers with the registered ensemble's scores
    on a fixed batch; ``matches`` when every answer is within 1e-5."""
    import httpx

    from level4_fraud.data.features import FEATURES
    from level4_fraud.serving.export import CHECK_TOLERANCE, check_batch, export_from_registry
    from level4_fraud.serving.onnx_service import create_app
    from level4_fraud.serving.service import BackgroundServer
    from level4_fraud.training.registry import load_model
    from ml_common.tracking import CHAMPION

    bundle = level_dir(4) / "bench" / "onnx"
    meta = export_from_registry(settings, bundle)
    champion = load_model(settings, CHAMPION)
    if champion is None:
        raise FileNotFoundError("no registered champion to compare with")
    X = check_batch(champion, rows, seed=1)
    expected = champion.predict_proba(X)
    served, versions = [], set()
    with (
        BackgroundServer(create_app(bundle)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        for i, row in enumerate(X):
            features = dict(zip(FEATURES, map(float, row), strict=True))
            answer = client.post("/score", json={"customer_id": i, "features": features})
            answer.raise_for_status()
            served.append(answer.json()["fraud_probability"])
            versions.add(answer.json()["model_version"])
    max_diff = float(abs(expected - served).max())
    return {
        "matches": bool(max_diff <= CHECK_TOLERANCE and versions == {meta["champion"]["version"]}),
        "max_abs_diff": max_diff,
        "rows": rows,
        "version": meta["champion"]["version"],
        "run_id": meta["champion"]["run_id"],
    }


def part1_tables(out: Path, top_k: int = 100) -> str:
    """The README's part-1 tables rendered from one bench run's files in ``out`` (so every figure
    there is one this run wrote): protocol, replay and its decisions, latency, lineage."""
    import json

    protocol = json.loads((out / "protocol.json").read_text())
    replay = json.loads((out / "replay" / "timeline.json").read_text())
    decisions = [
        json.loads(line)
        for line in (out / "replay" / "decisions.jsonl").read_text().splitlines()
        if line.strip()
    ]
    latency = json.loads((out / "latency.json").read_text())
    deployed = json.loads((out / "deployed.json").read_text())

    def num(value: Any, fmt: str = ".3f") -> str:
        return "—" if value is None else format(value, fmt)

    train, test = protocol["periods"]["train"], protocol["periods"]["test"]
    lines = [
        f"Protocol: train days {train[0]}–{train[1] - 1} ({protocol['n_train']:,} payments), test "
        f"days {test[0]}–{test[1] - 1} ({protocol['n_test']:,} payments, "
        f"{100 * protocol['fraud_rate_test']:.2f} % fraud); ensemble weights "
        + ", ".join(f"{k} {v:g}" for k, v in protocol["weights"].items() if v),
        "",
        f"| model | ROC AUC | AP | CP@{top_k} |",
        "|---|---|---|---|",
    ]
    for name in ("ensemble", "lightgbm", "fraudnet", "isolation_forest"):
        m = protocol[name]
        lines.append(f"| {name} | {m['auc']:.3f} | {m['ap']:.3f} | {m[f'cp{top_k}']:.3f} |")
    s = replay["summary"]
    lines += [
        "",
        "| replay figure | measured |",
        "|---|---|",
        f"| fraud drift from day | {s['drift_day']} |",
        f"| alarm delay (days) | {num(s['alarm_delay_days'], 'd')} (test: {s['alarm_by']}) |",
        f"| false alarms, stable / harmless-change days | {s['false_alarms_stable']} / "
        f"{s['false_alarms_harmless']} |",
        f"| mean daily AP before the pattern | {num(s['ap_before_drift'])} |",
        f"| mean daily AP while the pattern runs unfixed | {num(s['ap_drift_unfixed'])} |",
        f"| fix: first promotion of a champion trained on pattern days | day "
        f"{num(s['fix_day'], 'd')} ({s['fixed_by']}) |",
        f"| mean daily AP after the fix | {num(s['ap_after_recovery'])} |",
        f"| AP after the fix / before the pattern | {num(s['ap_recovery_ratio'])} |",
        f"| retrains / promotions | {s['retrains']} / {s['promotions']} |",
        "",
        "| day | trigger | champion AP on holdout | challenger AP | decision |",
        "|---|---|---|---|---|",
    ]
    for d in decisions:
        lines.append(
            f"| {d['day']} | {d['trigger']} | {num(d['champion'].get('ap'))} | "
            f"{d['challenger']['ap']:.3f} | {'promoted' if d['promoted'] else 'kept'}: "
            f"{d['reason']} |"
        )
    lines += [
        "",
        f"Scoring service ({latency.get('requests', '?')} requests): p50 "
        f"{latency['p50_ms']:.1f} ms, p99 {latency['p99_ms']:.1f} ms. Deployed = evaluated: "
        f"`@champion` version {deployed['version']} exported to ONNX and served over HTTP, "
        f"{deployed['rows']} rows, max difference {deployed['max_abs_diff']:.1e}, "
        f"matches: {str(deployed['matches']).lower()}.",
    ]
    return "\n".join(lines) + "\n"


def run_bench(settings: Level4Settings) -> Path:
    """Run protocol, replay, load test and part 2's measurements; write the bench JSON."""
    from level4_fraud.experiments.report import industrial_bench
    from level4_fraud.lifecycle.alerts import tested_alert_rules
    from level4_fraud.lifecycle.replay import run_replay
    from level4_fraud.lifecycle.scenarios import run_matrix
    from level4_fraud.training.handbook import run_handbook
    from level4_fraud.training.train import protocol_summary, run_protocol

    out = level_dir(4) / "bench"
    # The file is rewritten after each stage: a stage that fails costs only what follows it.
    with BenchRun(4) as bench:

        def record(figures: dict[str, Any]) -> None:
            bench.record({k: _round(v) for k, v in figures.items()})

        protocol = run_protocol(settings)
        write_json(out / "protocol.json", protocol_summary(protocol))
        record(
            {
                "ap": protocol["ensemble"]["ap"],
                "auc": protocol["ensemble"]["auc"],
                "cp100": protocol["ensemble"]["cp100"],
                "lgbm_ap": protocol["lightgbm"]["ap"],
                "lgbm_cp100": protocol["lightgbm"]["cp100"],
            }
        )
        record(run_handbook(settings)["bench"])
        summary = run_replay(settings, out / "replay")["summary"]
        record(
            {
                key: summary[key]
                for key in (
                    "alarm_delay_days",
                    "false_alarms_stable",
                    "false_alarms_harmless",
                    "ap_recovery_ratio",
                    "promotions",
                )
            }
        )
        matrix = run_matrix(settings, settings.scenarios)["summary"]
        record(
            {
                "eval_seeds": settings.scenarios.eval_seeds,
                **{
                    key: matrix[key]
                    for key in (
                        "drift_kinds",
                        "scenario_cases",
                        "detected_within_7d_share_vol_1",
                        "detected_within_7d_share_vol_half",
                        "detected_within_7d_share_vol_quarter",
                        "detected_share_by_kind",
                        "false_alarms_per_1000d",
                        "ap_lost_unfixed_mean",
                    )
                },
            }
        )
        record({"feast_join_rows_match": feast_join_rows_match(settings)})
        latency = scoring_latency(settings)
        record({"scoring_p50_ms": latency["p50_ms"], "scoring_p99_ms": latency["p99_ms"]})
        concurrent = concurrent_latency(settings, out / "serve-settings.json")
        write_json(out / "latency.json", latency)
        write_json(out / "concurrent.json", concurrent)
        record({"concurrent_500_p99_ms": concurrent["p99_ms"]})
        deployed = deployed_matches_champion(settings)
        write_json(out / "deployed.json", deployed)
        record({"deployed_matches_champion": deployed["matches"]})
        # promtool (Debian package prometheus) is optional: without it this figure alone is
        # recorded as not measured, with the reason.
        record(optional_figure("alert_rules_tested", tested_alert_rules))
        write_json(out / "config.json", dump_settings(settings))
        write_text(out / "tables.md", part1_tables(out, settings.protocol.top_k))
        record(industrial_bench())
    return bench.path
