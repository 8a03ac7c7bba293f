"""The whole story, day by day: stable → seasonal change → new fraud → alarm → retrain → recovery.

Day by day the replay streams transactions through the feature builder, scores them with the
champion, checks drift, updates the Prometheus metrics, and starts :func:`retrain_flow` when the
drift alarm fires (then every ``after_alarm_every_days`` while the alarm stands) or when the
schedule is due. Labels arrive ``delay_days`` late: a retrain on day ``t`` trains and holds out only
on days before ``t − delay``. So the first retrains after the alarm hold no example of the new
pattern, lose at the gate, and are recorded as such; the champion moves once the challenger has
seen the pattern and wins on the holdout.

Outputs in ``artifacts/level4/replay/``: ``timeline.json`` (one record per day plus the summary),
``timeline.png``, ``decisions.jsonl``, ``metrics.prom``, ``config.json``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from level4_fraud.config import Level4Settings
from level4_fraud.data.features import FEATURES, as_matrix
from level4_fraud.data.protocol import new_builder
from level4_fraud.data.simulate import TransactionSimulator
from level4_fraud.lifecycle.drift import DriftMonitor
from level4_fraud.lifecycle.metrics import FraudMetrics
from level4_fraud.lifecycle.retrain import retrain_flow, retrain_windows
from level4_fraud.models.ensemble import FraudEnsemble
from level4_fraud.training.evaluate import fraud_metrics
from level4_fraud.training.registry import log_model
from level4_fraud.training.train import fit_ensemble
from ml_common.atomic import atomic_dir, write_json
from ml_common.config import ConfigError, dump_settings
from ml_common.paths import level_dir
from ml_common.tracking import CHAMPION, set_alias


def fraud_spans(settings: Level4Settings) -> list[tuple[str, int, int]]:
    """``(kind, first day, last day)`` of every fraud drift event of the simulated world."""
    sim = settings.simulation
    return [(e.kind, *sim.event_span(e)) for e in sim.events() if e.is_fraud]


def period_of(day: int, settings: Level4Settings) -> str:
    """``fraud_drift`` (inside any fraud event), ``harmless`` (inside a harmless change only) or
    ``stable`` for a monitored day."""
    sim = settings.simulation
    if any(first <= day <= last for _, first, last in fraud_spans(settings)):
        return "fraud_drift"
    for event in sim.events():
        first, last = sim.event_span(event)
        if not event.is_fraud and first <= day <= last:
            return "harmless"
    return "stable"


def _window(history: OrderedDict[int, pd.DataFrame], start: int, stop: int) -> pd.DataFrame:
    parts = [history[d] for d in range(start, stop) if d in history]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=FEATURES)


def _push_snapshots(store: Any, builder: Any, day: int) -> None:
    """Update the Feast online store with ``day``'s start-of-day snapshots."""
    from level4_fraud.data.feature_store import push_online

    push_online(store, builder.customer_snapshot(day), builder.terminal_snapshot(day))


def _new_monitor(
    champion: FraudEnsemble,
    history: OrderedDict[int, pd.DataFrame],
    train_window: tuple[int, int],
    settings: Level4Settings,
) -> DriftMonitor:
    """A monitor whose reference is the last ``reference_days`` of the champion's training data:
    the first half sets the tail threshold, the second half calibrates the tail-rate test's null;
    every training day calibrates the suspect-card and suspect-terminal tests' nulls. The label
    tests calibrate themselves on the champion's first labelled days after deployment."""
    stop = train_window[1]
    start = max(train_window[0], stop - settings.monitor.reference_days)
    middle = start + (stop - start) // 2
    threshold_rows = _window(history, start, middle)
    X = as_matrix(threshold_rows[FEATURES])
    calibration = [as_matrix(history[d][FEATURES]) for d in range(middle, stop) if d in history]
    card_days = [
        (as_matrix(history[d][FEATURES]), history[d]["customer_id"].to_numpy())
        for d in range(train_window[0], stop)
        if d in history
    ]
    terminal_days = [
        (X_day, history[d]["terminal_id"].to_numpy())
        for d, (X_day, _) in zip(
            [d for d in range(train_window[0], stop) if d in history], card_days, strict=True
        )
    ]
    return DriftMonitor(
        champion.members["isolation_forest"],
        X,
        champion.predict_proba(X),
        settings.monitor,
        calibration=calibration,
        card_days=card_days,
        terminal_days=terminal_days,
    )


@dataclass
class _ReplayState:
    """What the replay carries from day to day: the deployed champion and the monitor's state."""

    settings: Level4Settings
    history: OrderedDict[int, pd.DataFrame]
    metrics: FraudMetrics = field(default_factory=FraudMetrics)
    champion: FraudEnsemble | None = None
    monitor: DriftMonitor | None = None
    champion_window: tuple[int, int] = (0, 0)  # the days the champion was trained on
    deployed_on: int = 0  # the day the current champion started serving
    # The champion's scores and the labels of recent days, until their labels "arrive".
    scored: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    alarm_active: bool = False
    last_train_day: int = 0
    last_alarm_retrain: int = -(10**9)
    reference_ap: float | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)

    def deploy_first_champion(self, day: int, train_start: int, train_stop: int) -> None:
        """Train, register and deploy the first champion; baseline the monitor on its data."""
        settings = self.settings
        self.champion = fit_ensemble(_window(self.history, train_start, train_stop), settings)
        version = log_model(self.champion, settings, {}, {"day": day}, run_name="replay-initial")
        set_alias(settings.model_name, CHAMPION, version)
        self.metrics.champion_version.set(version)
        self.champion_window = (train_start, train_stop)
        self.deployed_on = day
        self.monitor = _new_monitor(self.champion, self.history, self.champion_window, settings)

    def monitor_day(self, day: int, frame: pd.DataFrame) -> dict[str, Any]:
        """Score the day with the champion, check drift, export the metrics; the day's record."""
        assert self.champion is not None and self.monitor is not None
        settings, metrics = self.settings, self.metrics
        delay, top_k = settings.protocol.delay_days, settings.protocol.top_k
        X = as_matrix(frame[FEATURES])
        day_scores = self.champion.predict_proba(X)
        self.scored[day] = (day_scores, frame["tx_fraud"].to_numpy())
        # Today the labels of day - delay arrive; they feed the label tests if the serving
        # champion scored that day (a new champion's monitor starts on its own days).
        arrived = self.scored.pop(day - delay, None) if day - delay >= self.deployed_on else None
        for old in [d for d in self.scored if d < day - delay]:
            del self.scored[old]
        drift = self.monitor.check(
            X,
            day_scores,
            frame["customer_id"].to_numpy(),
            frame["terminal_id"].to_numpy(),
            labelled=arrived,
        )
        record: dict[str, Any] = {
            "day": day,
            "period": period_of(day, settings),
            "n_tx": len(frame),
            "n_fraud": int(frame["tx_fraud"].sum()),
            # Payments of the drift events' fraud kinds (scenarios 4-7).
            "n_drift_fraud": int((frame["tx_fraud_scenario"] >= 4).sum()),
            "tail_ratio": drift.tail_ratio,
            "p_value": drift.p_value,
            "signal": drift.signal,
            "alarm": drift.alarm and not self.alarm_active,
            "max_feature_psi": drift.max_feature_psi,
            "score_ks": drift.score_ks,
            "cusum": drift.cusum,
            "cusum_h": self.monitor.cusum.h if self.monitor.cusum is not None else None,
            "z": drift.z,
            "suspect_cards": drift.suspect_cards,
            "card_cusum": drift.card_cusum,
            "card_cusum_h": self.monitor.card_cusum.h if self.monitor.card_cusum else None,
            "suspect_terminals": drift.suspect_terminals,
            "terminal_cusum": drift.terminal_cusum,
            "precision_at_k": drift.precision_at_k,
            "missed_fraud": drift.missed_fraud,
            "precision_cusum": drift.precision_cusum,
            "missed_cusum": drift.missed_cusum,
            "test_h": {  # each test's threshold today (None: not in use / not calibrated yet)
                name: (test.h if test is not None else None)
                for name, test in (
                    ("terminal", self.monitor.terminal_cusum),
                    ("precision", self.monitor.precision_cusum),
                    ("missed", self.monitor.missed_cusum),
                )
            },
            "alarm_by": drift.alarm_by if drift.alarm else None,
            "champion_trained_on": list(self.champion_window),
            "retrain": None,
            "promoted": False,
        }
        metrics.tail_ratio.set(drift.tail_ratio)
        metrics.score_ks.set(drift.score_ks)
        for name, value in drift.feature_psi.items():
            metrics.feature_psi.labels(feature=name).set(value)
        if drift.alarm:
            self.alarm_active = True
        metrics.drift_alarm.set(int(self.alarm_active))
        # The day's performance; in the real world it is known only ``delay`` days later,
        # which is when the exported gauge shows it.
        record.update(fraud_metrics(frame, day_scores, top_k))
        record["labels_known_on_day"] = day + delay
        known = [r for r in self.records if r["day"] == day - delay]
        if known:
            metrics.delayed_ap.set(known[0]["ap"])
            metrics.delayed_cp.set(known[0][f"cp{top_k}"])
            if self.reference_ap is None:  # the first labelled day after deployment
                self.reference_ap = known[0]["ap"]
                metrics.reference_ap.set(self.reference_ap)
        return record

    def maybe_retrain(self, day: int, record: dict[str, Any], decisions_path: str) -> None:
        """Start the retraining flow when the alarm or the schedule asks; deploy a promotion."""
        settings, metrics = self.settings, self.metrics
        trigger = None
        if (
            self.alarm_active
            and day - self.last_alarm_retrain >= settings.retrain.after_alarm_every_days
        ):
            trigger = "drift"
        elif day - self.last_train_day >= settings.retrain.schedule_days:
            trigger = "schedule"
        if not trigger:
            return
        (train_from, train_to), (hold_from, hold_to) = retrain_windows(day, settings)
        decision = retrain_flow(
            _window(self.history, train_from, train_to),
            _window(self.history, hold_from, hold_to),
            self.champion,
            settings,
            trigger=trigger,
            day=day,
            decisions_path=decisions_path,
        )
        self.decisions.append(decision)
        metrics.decisions.labels(outcome="promoted" if decision["promoted"] else "rejected").inc()
        record["retrain"] = trigger
        self.last_train_day = day
        if trigger == "drift":
            self.last_alarm_retrain = day
        if decision["promoted"]:
            self.deploy_promotion(day, decision, record)

    def deploy_promotion(self, day: int, decision: dict[str, Any], record: dict[str, Any]) -> None:
        """Serve the promoted challenger from today; its monitor referenced on its training days."""
        from level4_fraud.training.registry import load_model

        settings, metrics = self.settings, self.metrics
        self.champion = load_model(settings, CHAMPION)
        assert self.champion is not None
        # The new champion's monitor is referenced on the data it was trained on, never on recent
        # traffic: a pattern the champion has not seen keeps the alarm up.
        self.champion_window = retrain_windows(day, settings)[0]
        self.deployed_on = day + 1  # it scores from tomorrow
        self.scored.clear()
        self.monitor = _new_monitor(self.champion, self.history, self.champion_window, settings)
        self.alarm_active = False
        record["promoted"] = True
        metrics.promotions.inc()
        metrics.champion_version.set(decision["challenger_version"])
        self.reference_ap = decision["challenger"]["ap"]
        metrics.reference_ap.set(self.reference_ap)


def _check_calendar(settings: Level4Settings) -> None:
    rp, delay = settings.replay, settings.protocol.delay_days
    train_stop = rp.first_train_day + rp.first_train_days
    if rp.monitor_start_day < train_stop + delay:
        raise ConfigError(
            f"replay.monitor_start_day ({rp.monitor_start_day}) must be at least first_train_day + "
            f"first_train_days + delay_days ({train_stop + delay}): labels arrive late"
        )
    if rp.monitor_start_day >= settings.simulation.n_days:
        raise ConfigError("replay.monitor_start_day must fall inside simulation.n_days")


def run_replay(
    settings: Level4Settings, out_dir: Path | None = None, progress: bool = True
) -> dict[str, Any]:
    """Run the replay; write its outputs; return ``{"days": [...], "summary": {...}}``."""
    _check_calendar(settings)
    sim_cfg, rp, delay = settings.simulation, settings.replay, settings.protocol.delay_days
    train_start, train_stop = rp.first_train_day, rp.first_train_day + rp.first_train_days
    out_dir = out_dir or level_dir(4) / "replay"
    keep = max(rp.first_train_days, settings.retrain.train_days + settings.retrain.holdout_days)
    keep += delay + 2
    sim = TransactionSimulator(sim_cfg)
    builder = new_builder(sim_cfg, delay)
    store = None
    if settings.use_feast:
        from level4_fraud.data.feature_store import open_store

        store = open_store()
    state = _ReplayState(settings, OrderedDict(), last_train_day=rp.monitor_start_day)
    with atomic_dir(out_dir) as tmp:
        decisions_path = str(tmp / "decisions.jsonl")
        for day in tqdm(range(sim_cfg.n_days), desc="replay", unit="day", disable=not progress):
            if store is not None and day >= rp.monitor_start_day:
                _push_snapshots(store, builder, day)
            frame = builder.transform_day(sim.day(day))
            if day >= train_start:
                state.history[day] = frame
            while state.champion is not None and next(iter(state.history), day) < day - keep:
                state.history.popitem(last=False)
            if day < rp.monitor_start_day:
                continue
            if state.champion is None:
                state.deploy_first_champion(day, train_start, train_stop)
            record = state.monitor_day(day, frame)
            state.maybe_retrain(day, record, decisions_path)
            record["alarm_active"] = state.alarm_active
            state.records.append(record)
            state.metrics.write_textfile(tmp / "metrics.prom")

        if store is not None:  # what the scoring service serves on the next day
            _push_snapshots(store, builder, sim_cfg.n_days)
        summary = summarise(state.records, state.decisions, settings)
        result = {"summary": summary, "days": state.records}
        write_json(tmp / "timeline.json", result)
        write_json(tmp / "config.json", dump_settings(settings))
        timeline_figure(state.records, settings, tmp / "timeline.png")
    return result


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and v == v]
    return float(np.mean(values)) if values else None


def summarise(
    records: list[dict[str, Any]], decisions: list[dict[str, Any]], settings: Level4Settings
) -> dict[str, Any]:
    """Alarm delay per fraud event, false alarms, AP before, during and after the drift.

    Every drift event of the world is known here: an alarm on a day inside any fraud event's
    span (its start to the last day its fraud shows) is a **detection**; only an alarm outside
    all of them is a **false alarm** (counted apart on stable and harmless-change days). The
    drift day is the first fraud event's start; ``alarm_delay_days`` is that event's.

    Recovery is defined once: the **fix** is the first promotion, on or after the drift day, of
    a champion whose training window holds at least one drift day (a model that never saw the
    drift cannot have learnt it). ``ap_drift_unfixed`` averages the daily AP from the drift day
    to the fix (exclusive; to the end when there is no fix), ``ap_after_recovery`` the days after
    the fix, ``ap_recovery_ratio`` divides it by ``ap_before_drift`` (monitored days before the
    drift day); ``days_to_recovery``: days from the drift day to the first day on or after the
    fix whose 3-day mean AP is back to 95 % of ``ap_before_drift``. Without a fraud event, or
    without a fix, they are ``None``.
    """
    spans = fraud_spans(settings)
    drift_day = min((first for _, first, _ in spans), default=None)
    alarms = [r["day"] for r in records if r["alarm"]]
    by_day = {r["day"]: r for r in records}
    events = []
    for kind, first, last in spans:
        inside = [d for d in alarms if first <= d <= last]
        events.append(
            {
                "kind": kind,
                "start_day": first,
                "last_day": last,
                "alarm_delay_days": inside[0] - first if inside else None,
                "alarm_by": by_day[inside[0]]["alarm_by"] if inside else None,
            }
        )
    false_stable = sum(1 for r in records if r["alarm"] and r["period"] == "stable")
    false_harmless = sum(1 for r in records if r["alarm"] and r["period"] == "harmless")
    outside_days = sum(1 for r in records if r["period"] != "fraud_drift")
    first_event = min(events, key=lambda e: e["start_day"]) if events else None
    delay = first_event["alarm_delay_days"] if first_event else None
    fired_by = first_event["alarm_by"] if first_event else None
    promotions = [d["day"] for d in decisions if d["promoted"]]
    before = [r for r in records if drift_day is None or r["day"] < drift_day]
    ap_before = _mean([r["ap"] for r in before])
    fix_day = fixed_by = None
    if drift_day is not None:
        for i, r in enumerate(records):
            # The champion of the day after a promotion is the promoted model.
            if r["promoted"] and r["day"] >= drift_day and i + 1 < len(records):
                trained_to = records[i + 1]["champion_trained_on"][1]
                if trained_to > drift_day:
                    fix_day, fixed_by = r["day"], by_day[r["day"]]["retrain"]
                    break
    ap_unfixed = ap_after = ratio = recovery = None
    if drift_day is not None:
        stop = fix_day if fix_day is not None else 10**9
        ap_unfixed = _mean([r["ap"] for r in records if drift_day <= r["day"] < stop])
    if fix_day is not None:
        ap_after = _mean([r["ap"] for r in records if r["day"] > fix_day])
        ratio = ap_after / ap_before if ap_after is not None and ap_before else None
        later = [r for r in records if r["day"] > fix_day]
        for i in range(len(later) - 2):
            window = _mean([r["ap"] for r in later[i : i + 3]])
            if ap_before and window is not None and window >= 0.95 * ap_before:
                recovery = later[i]["day"] - drift_day
                break
    return {
        "alarm_days": alarms,
        "alarm_delay_days": delay,
        "alarm_by": fired_by,
        "fraud_events": events,
        "false_alarms_stable": false_stable,
        "false_alarms_harmless": false_harmless,
        "days_without_pattern": outside_days,
        "promotion_days": promotions,
        "promotions": len(promotions),
        "retrains": len(decisions),
        "ap_before_drift": ap_before,
        "fix_day": fix_day,
        "fixed_by": fixed_by,
        "ap_drift_unfixed": ap_unfixed,
        "ap_after_recovery": ap_after,
        "ap_recovery_ratio": ratio,
        "days_to_recovery": recovery,
        "drift_events": [e.model_dump() for e in settings.simulation.events()],
        "drift_day": drift_day,
    }


def timeline_figure(records: list[dict[str, Any]], settings: Level4Settings, path: Path) -> None:
    """Daily AP and drift score with the switches, alarms, retrains and promotions marked."""
    import matplotlib.pyplot as plt

    from ml_common.plots import save_figure  # importing it selects the headless Agg backend

    top_k = settings.protocol.top_k
    days = [r["day"] for r in records]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    ax1.plot(days, [r["ap"] for r in records], label="AP (champion, per day)", color="tab:blue")
    ax1.plot(
        days, [r[f"cp{top_k}"] for r in records], label=f"CP@{top_k}", color="tab:cyan", alpha=0.7
    )
    ax1.set_ylabel("daily metric")
    ax1.set_ylim(0, 1)
    if records and records[0].get("cusum") is not None:
        # Each test's statistic over its own threshold h (h moves with each new champion's
        # calibration): both alarm at 1.
        ax2.plot(
            days,
            [r["cusum"] / r["cusum_h"] for r in records],
            color="tab:orange",
            label="tail-rate CUSUM / h",
        )
        if records[0].get("card_cusum") is not None:
            ax2.plot(
                days,
                [r["card_cusum"] / r["card_cusum_h"] for r in records],
                color="tab:purple",
                label="suspect-card CUSUM / h",
            )
        for key, name, color in (
            ("terminal_cusum", "terminal", "tab:brown"),
            ("precision_cusum", "precision", "tab:olive"),
            ("missed_cusum", "missed", "tab:pink"),
        ):
            ratio = [
                r[key] / r["test_h"][name] if r.get(key) is not None and r["test_h"][name] else None
                for r in records
            ]
            if any(v is not None for v in ratio):
                ax2.plot(
                    days,
                    [np.nan if v is None else v for v in ratio],
                    color=color,
                    label=f"{key.replace('_', ' ')} / h",
                )
        ax2.axhline(1.0, color="red", ls=":", lw=1, label="alarm at 1")
        ax2.set_ylabel("CUSUM / its threshold h")
    else:
        ax2.plot(
            days, [r["tail_ratio"] for r in records], color="tab:orange", label="anomaly tail ratio"
        )
        ax2.axhline(
            settings.monitor.alarm_ratio, color="tab:orange", ls=":", label="alarm threshold"
        )
        ax2.set_ylabel("tail rate / expected")
    ax2b = ax2.twinx()
    ax2b.plot(
        days,
        [r["max_feature_psi"] for r in records],
        color="tab:gray",
        alpha=0.6,
        label="max feature PSI (reported)",
    )
    ax2b.set_ylabel("max feature PSI")
    ax2.set_xlabel("simulated day")
    sim = settings.simulation
    for ax in (ax1, ax2):
        for event in sim.events():
            color = "tab:red" if event.is_fraud else "tab:green"
            ax.axvline(event.start_day, color=color, ls="--", lw=1)
        for r in records:
            if r["alarm"]:
                ax.axvline(r["day"], color="red", lw=2, alpha=0.5)
            if r["promoted"]:
                ax.axvline(r["day"], color="green", lw=2, alpha=0.5)
            elif r["retrain"]:
                ax.axvline(r["day"], color="gray", lw=1, alpha=0.4, ls=":")
    ax1.set_title(
        "green dashed: harmless change · red dashed: fraud drift · red: alarm · "
        "green: promotion · dotted: retrain rejected",
        fontsize=9,
    )
    ax1.legend(loc="lower left", fontsize=8)
    ax2.legend(loc="upper left", fontsize=8)
    ax2b.legend(loc="upper right", fontsize=8)
    save_figure(fig, path)  # closes the figure


def _num(value: float | None) -> float:
    return float("nan") if value is None else value


def summary_line(s: dict[str, Any]) -> str:
    """The run's outcome in one line, with only the figures that mean something for it."""
    parts = [
        f"false alarms stable {s['false_alarms_stable']} / harmless {s['false_alarms_harmless']}",
        f"promotions {s['promotions']} of {s['retrains']} retrains",
        f"AP before the pattern {_num(s['ap_before_drift']):.3f}",
    ]
    if s["drift_day"] is None:
        return " · ".join(["no fraud drift in this run", *parts])
    if s["alarm_delay_days"] is None:
        parts.insert(0, f"NO ALARM for the fraud drift of day {s['drift_day']}")
    else:
        parts.insert(0, f"alarm delay {s['alarm_delay_days']} days")
    parts.append(f"AP while unfixed {_num(s['ap_drift_unfixed']):.3f}")
    if s["fix_day"] is None:
        parts.append("never fixed: no champion trained on the pattern was promoted")
    else:
        parts.append(
            f"fixed on day {s['fix_day']} ({s['fixed_by']}) · AP after {s['ap_after_recovery']:.3f}"
            f" · ratio {_num(s['ap_recovery_ratio']):.3f}"
        )
    return " · ".join(parts)


def print_summary(result: dict[str, Any]) -> str:
    """A short text timeline for the terminal."""
    lines = ["day  period       AP     tail  cusum cards card-cusum alarm retrain promoted"]
    for r in result["days"]:
        if r["alarm"] or r["retrain"] or r["day"] % 5 == 0:
            cusum = "" if r.get("cusum") is None else f"{r['cusum']:5.1f}"
            cards = "" if r.get("suspect_cards") is None else str(r["suspect_cards"])
            card_cusum = "" if r.get("card_cusum") is None else f"{r['card_cusum']:5.2f}"
            lines.append(
                f"{r['day']:>3}  {r['period']:<11} {_num(r['ap']):.3f}"
                f"  {r['tail_ratio']:5.2f} {cusum:>5} {cards:>5} {card_cusum:>10}"
                f"  {'ALARM' if r['alarm'] else '':5} {r['retrain'] or '':8} "
                f"{'yes' if r['promoted'] else ''}"
            )
    lines.append(summary_line(result["summary"]))
    return "\n".join(lines)
