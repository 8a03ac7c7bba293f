"""Industrial-scale techniques on the fraud model, measured in one run (issue 7).

:func:`industrial_bench` simulates one world (with the new fraud pattern switched on late), trains
the deployed :class:`~level4_fraud.models.FraudNet` and then measures, each on the same data:

1. DDP training with 1 and 2 torchrun processes (:mod:`level4_fraud.distributed`);
2. scoring engines: torch fp32, torch int8 dynamic, ONNX Runtime fp32 and static int8
   (:mod:`level4_fraud.optimize.quantize`);
3. a distilled student of the teacher ensemble (:mod:`level4_fraud.optimize.distill`);
4. adapting to the new pattern: none, full fine-tuning, LoRA (:mod:`level4_fraud.optimize.lora`);
5. the A/B test's false-win rate and power (:mod:`level4_fraud.abtest`).

The time line of the simulated world (days)::

    0 ── 30 warm-up ── train ── +delay ── old-pattern test ── new pattern starts ── adapt
        ── +delay ── new-pattern test

Settings: ``industrial.yaml`` beside this file, environment prefix ``LEVEL4_INDUSTRIAL_``. The
full report (every column, not only the benchmark keys) goes to
``artifacts/level4/industrial/report.json`` with the resolved config, figures and an MLflow run per
technique.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field

from ml_common.atomic import atomic_dir, write_json, write_text
from ml_common.config import LevelSettings, dump_settings, load_settings, settings_config
from ml_common.logs import get_logger
from ml_common.paths import level_dir
from ml_common.seeding import seed_everything

if TYPE_CHECKING:  # torch and scikit-learn load lazily: `python -m level4_fraud --help` stays fast
    import torch

log = get_logger(__name__)
DEFAULT_CONFIG = Path(__file__).with_name("industrial.yaml")
ENGINES = ("torch_fp32", "torch_int8_dynamic", "onnx_fp32", "onnx_int8_static")
ADAPTATIONS = ("no_adaptation", "full_finetune", "lora")
BENCH_KEYS = (
    "ddp_2proc_matches_single",
    "ddp_throughput_1proc",
    "ddp_throughput_2proc",
    "quant_speedup",
    "quant_ap_loss",
    "onnx_speedup",
    "student_param_ratio",
    "student_ap_loss",
    "lora_trainable_params",
    "lora_ap_new_pattern",
    "full_finetune_ap_new_pattern",
    "no_adapt_ap_new_pattern",
    "ab_false_win_rate",
    "ab_power",
)


class WorldSettings(BaseModel):
    """The simulated world and its time line."""

    n_customers: int = Field(2000, ge=10)
    n_terminals: int = Field(4000, ge=10)
    warmup_days: int = Field(30, ge=0)
    train_days: int = Field(21, ge=1)
    delay_days: int = Field(7, ge=0)
    test_days: int = Field(7, ge=1)
    new_pattern_day: int = Field(75, ge=1)
    adapt_days: int = Field(7, ge=1)


class ModelSettings(BaseModel):
    """The deployed network (passed to part 1's ``TorchConfig``)."""

    hidden: tuple[int, ...] = (128, 64)
    dropout: float = 0.1
    epochs: int = 4
    batch_size: int = 1024
    lr: float = 2e-3


class DDPSettings(BaseModel):
    """DDP comparison: the same run with 1 and ``nproc`` processes (dropout off to compare)."""

    nproc: int = Field(2, ge=2)
    epochs: int = Field(2, ge=1)
    batch_size: int = 1024
    score_tolerance: float = 5e-3  # max |p_1proc - p_Nproc| over the test rows
    ap_tolerance: float = 0.005


class QuantSettings(BaseModel):
    """Scoring engines: batch size and seconds of measurement per engine."""

    batch_size: int = 1024
    seconds: float = 1.5


class DistillSettings(BaseModel):
    """The student and the teacher ensemble's weights."""

    hidden: tuple[int, ...] = (16,)
    hard_weight: float = 0.2
    calibrate_teacher: bool = True
    epochs: int = 20
    lr: float = 5e-3
    teacher_weights: dict[str, float] = {"fraudnet": 0.4, "lightgbm": 0.5, "isolation_forest": 0.1}


class AdaptSettings(BaseModel):
    """Adapting to the new fraud pattern: LoRA rank and both training budgets."""

    rank: int = Field(4, ge=1)
    alpha: float = 8.0
    epochs: int = 4
    lora_lr: float = 5e-3
    finetune_lr: float = 1e-3
    batch_size: int = 512


class IndustrialSettings(LevelSettings):
    """Everything :func:`industrial_bench` measures, from ``industrial.yaml``."""

    model_config = settings_config("LEVEL4_INDUSTRIAL_")
    seed: int = 0
    world: WorldSettings = WorldSettings()
    model: ModelSettings = ModelSettings()
    ddp: DDPSettings = DDPSettings()
    quant: QuantSettings = QuantSettings()
    distill: DistillSettings = DistillSettings()
    adapt: AdaptSettings = AdaptSettings()
    ab_experiments: int = Field(400, ge=20)


def load_industrial_settings(
    path: str | Path | None = None, **overrides: Any
) -> IndustrialSettings:
    """The settings from ``path`` (default ``industrial.yaml``), overrides and environment."""
    return load_settings(IndustrialSettings, path or DEFAULT_CONFIG, **overrides)


@dataclass
class Splits:
    """Feature matrices of the time line's windows (float32 rows, 0/1 labels)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray  # old patterns only, before the switch
    y_test: np.ndarray
    X_adapt: np.ndarray  # first days of the new pattern, labelled
    y_adapt: np.ndarray
    X_new: np.ndarray  # later new-pattern days: legitimate rows and new-pattern frauds only
    y_new: np.ndarray
    features: list[str]


def prepare_data(settings: IndustrialSettings) -> Splits:
    """Simulate the world and cut it into the time line's windows."""
    from level4_fraud.features import FEATURES, LABEL, features_frame
    from level4_fraud.simulate import SimulationConfig, TransactionSimulator

    w = settings.world
    train_start = w.warmup_days
    test_start = train_start + w.train_days + w.delay_days
    if test_start + w.test_days > w.new_pattern_day:
        raise ValueError("world: the old-pattern test window must end before new_pattern_day")
    adapt_end = w.new_pattern_day + w.adapt_days
    new_start = adapt_end + w.delay_days
    n_days = new_start + w.test_days
    simulator = TransactionSimulator(
        SimulationConfig(
            seed=settings.seed,
            n_customers=w.n_customers,
            n_terminals=w.n_terminals,
            n_days=n_days,
            new_pattern_day=w.new_pattern_day,
        )
    )
    frame = features_frame(simulator, 0, n_days)
    day = frame["tx_time_days"].to_numpy()
    scenario = frame["tx_fraud_scenario"].to_numpy()
    X = frame[FEATURES].to_numpy(dtype=np.float32)
    y = frame[LABEL].to_numpy(dtype=np.float32)

    def window(start: int, stop: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        keep = (day >= start) & (day < stop)
        if mask is not None:
            keep &= mask
        return np.ascontiguousarray(X[keep]), y[keep]

    new_only = (scenario == 0) | (scenario == 4)
    splits = Splits(
        *window(train_start, train_start + w.train_days),
        *window(test_start, test_start + w.test_days),
        *window(w.new_pattern_day, adapt_end),
        *window(new_start, new_start + w.test_days, new_only),
        features=list(FEATURES),
    )
    if splits.y_new.sum() == 0 or splits.y_test.sum() == 0:
        raise ValueError("the simulated windows hold no fraud: enlarge the world or the windows")
    return splits


def _ap(y: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, scores))


def _torch_config(settings: IndustrialSettings, **update: Any) -> Any:
    from level4_fraud.models import TorchConfig

    m = settings.model
    return TorchConfig(
        hidden=m.hidden,
        dropout=m.dropout,
        epochs=m.epochs,
        batch_size=m.batch_size,
        lr=m.lr,
        seed=settings.seed,
        device="cpu",
    ).model_copy(update=update)


# -- 1. distributed training ---------------------------------------------------------------------
def bench_ddp(settings: IndustrialSettings, splits: Splits, out: Path) -> dict[str, Any]:
    """Train with 1 and N torchrun processes; compare weights, AP and throughput."""
    import torch

    from level4_fraud.distributed import launch
    from level4_fraud.models import FraudNet, predict_proba

    d = settings.ddp
    config = _torch_config(settings, dropout=0.0, epochs=d.epochs, batch_size=d.batch_size)
    reports, models = {}, {}
    for nproc in (1, d.nproc):
        log.info("DDP: training with %d process(es)", nproc)
        reports[nproc] = launch(splits.X_train, splits.y_train, config, nproc, out / "ddp")
        model = FraudNet(splits.X_train.shape[1], config.hidden, config.dropout)
        model.load_state_dict(torch.load(reports[nproc]["state_dict_path"]))
        models[nproc] = model.eval()
    single, multi = models[1], models[d.nproc]
    max_param_diff = max(
        float((a - b).abs().max())
        for a, b in zip(single.parameters(), multi.parameters(), strict=True)
    )
    # Not bit-equal: the all-reduce sums two half-batch means in another order than one full
    # mean, and Adam's normalisation magnifies such 1e-7 differences in weights whose gradients
    # are tiny. So the match is judged on what the model does: scores and AP.
    scores_single = predict_proba(single, splits.X_test)
    scores_multi = predict_proba(multi, splits.X_test)
    max_score_diff = float(np.abs(scores_single - scores_multi).max())
    ap_single = _ap(splits.y_test, scores_single)
    ap_multi = _ap(splits.y_test, scores_multi)
    matches = (
        max_score_diff <= d.score_tolerance
        and abs(ap_single - ap_multi) <= d.ap_tolerance
        and reports[d.nproc]["replica_max_abs_diff"] == 0.0
    )
    return {
        "matches_single": bool(matches),
        "max_param_diff": max_param_diff,
        "max_score_diff": max_score_diff,
        "replica_max_abs_diff": reports[d.nproc]["replica_max_abs_diff"],
        "ap_1proc": ap_single,
        f"ap_{d.nproc}proc": ap_multi,
        "throughput_1proc": reports[1]["throughput"],
        f"throughput_{d.nproc}proc": reports[d.nproc]["throughput"],
        "backend": reports[d.nproc]["backend"],
        "device": reports[d.nproc]["device"],
        "amp": reports[d.nproc]["amp"],
        "global_batch": reports[d.nproc]["global_batch"],
    }


# -- 2. quantization and ONNX --------------------------------------------------------------------
def bench_quantization(
    settings: IndustrialSettings, splits: Splits, model: torch.nn.Module, out: Path
) -> dict[str, Any]:
    """Every scoring engine on the old-pattern test rows; the int8 engine is the faster one."""
    from level4_fraud.optimize.quantize import compare_engines

    engines = compare_engines(
        model,
        splits.X_test,
        splits.y_test,
        splits.X_train,
        out / "onnx",
        settings.quant.batch_size,
        settings.quant.seconds,
    )
    # "Static if it pays": the int8 engine reported is the faster of dynamic and static, chosen on
    # throughput alone (the reason to quantize), its AP loss reported as measured.
    int8 = max(("torch_int8_dynamic", "onnx_int8_static"), key=lambda n: engines[n]["throughput"])
    return {"engines": engines, "int8_engine": int8}


# -- 3. distillation -----------------------------------------------------------------------------
def bench_distillation(
    settings: IndustrialSettings, splits: Splits, teacher_net: torch.nn.Module
) -> dict[str, Any]:
    """Teacher ensemble (FraudNet + LightGBM + isolation forest) vs a small distilled student."""
    import torch

    from level4_fraud.models import (
        FraudEnsemble,
        predict_proba,
        train_isolation_forest,
        train_lightgbm,
    )
    from level4_fraud.optimize.distill import (
        calibrate_teacher,
        count_parameters,
        lightgbm_parameters,
        train_student,
    )
    from level4_fraud.optimize.quantize import time_per_row_ms

    s = settings.distill
    lightgbm = train_lightgbm(splits.X_train, splits.y_train)
    forest = train_isolation_forest(splits.X_train, seed=settings.seed)
    teacher = FraudEnsemble(
        {"fraudnet": teacher_net, "lightgbm": lightgbm, "isolation_forest": forest},
        s.teacher_weights,
    )
    soft = teacher.predict_proba(splits.X_train)
    if s.calibrate_teacher:
        soft = calibrate_teacher(soft, splits.y_train)
    start = time.perf_counter()
    student = train_student(
        splits.X_train, soft, splits.y_train, s.hidden, s.hard_weight, s.epochs, lr=s.lr,
        seed=settings.seed,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    hard_only = train_student(
        splits.X_train, splits.y_train, splits.y_train, s.hidden, 1.0, s.epochs, lr=s.lr,
        seed=settings.seed,
    )  # fmt: skip
    teacher_ap = _ap(splits.y_test, teacher.predict_proba(splits.X_test))
    student_ap = _ap(splits.y_test, predict_proba(student, splits.X_test))
    teacher_net_params = count_parameters(teacher_net)
    student_params = count_parameters(student)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        teacher_ms = time_per_row_ms(teacher.predict_proba, splits.X_test, rows=100)
        student_ms = time_per_row_ms(lambda X: predict_proba(student, X), splits.X_test)
    finally:
        torch.set_num_threads(previous)
    return {
        "teacher_ap": teacher_ap,
        "teacher_fraudnet_ap": _ap(splits.y_test, predict_proba(teacher_net, splits.X_test)),
        "teacher_lightgbm_ap": _ap(splits.y_test, lightgbm.predict_proba(splits.X_test)[:, 1]),
        "student_ap": student_ap,
        "teacher_calibrated": s.calibrate_teacher,
        "student_hard_labels_only_ap": _ap(splits.y_test, predict_proba(hard_only, splits.X_test)),
        "student_ap_loss_pts": 100 * (teacher_ap - student_ap),
        "teacher_fraudnet_params": teacher_net_params,
        "teacher_lightgbm_params": lightgbm_parameters(lightgbm),
        "student_params": student_params,
        "param_ratio_vs_fraudnet": teacher_net_params / student_params,
        "teacher_latency_ms": teacher_ms,
        "student_latency_ms": student_ms,
        "student_train_seconds": seconds,
    }


# -- 4. adapting to the new pattern --------------------------------------------------------------
def bench_adaptation(
    settings: IndustrialSettings, splits: Splits, deployed: torch.nn.Module
) -> dict[str, Any]:
    """No adaptation vs full fine-tuning vs LoRA on the first labelled days of the new pattern."""
    import torch

    from level4_fraud.models import _loss_fn, fit_epoch, predict_proba
    from level4_fraud.optimize.lora import add_lora, merge_lora, trainable_parameters

    a = settings.adapt
    device = torch.device("cpu")
    dataset = torch.utils.data.TensorDataset(
        torch.from_numpy(splits.X_adapt), torch.from_numpy(splits.y_adapt)
    )
    loss_fn = _loss_fn(splits.y_adapt, _torch_config(settings), device)

    def adapt(model: torch.nn.Module, lr: float) -> float:
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=a.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(settings.seed),
        )
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(trainable, lr=lr)
        start = time.perf_counter()
        for _ in range(a.epochs):
            fit_epoch(model, loader, optimizer, loss_fn, device)
        model.eval()
        return time.perf_counter() - start

    def evaluate(model: torch.nn.Module, trainable: int, seconds: float) -> dict[str, float]:
        return {
            "trainable_params": trainable,
            "seconds": seconds,
            "ap_new_pattern": _ap(splits.y_new, predict_proba(model, splits.X_new)),
            "ap_old_patterns": _ap(splits.y_test, predict_proba(model, splits.X_test)),
        }

    torch.manual_seed(settings.seed)
    results = {"no_adaptation": evaluate(deployed, 0, 0.0)}
    full = copy.deepcopy(deployed)
    for parameter in full.parameters():
        parameter.requires_grad_(True)
    seconds = adapt(full, a.finetune_lr)
    results["full_finetune"] = evaluate(full, trainable_parameters(full), seconds)
    lora = add_lora(deployed, a.rank, a.alpha)
    lora_trainable = trainable_parameters(lora)
    seconds = adapt(lora, a.lora_lr)
    merged = merge_lora(lora)  # what would be served: same shape and speed as the deployed net
    results["lora"] = evaluate(merged, lora_trainable, seconds)
    results["lora"]["merged_matches_adapters"] = bool(
        np.allclose(
            predict_proba(lora, splits.X_new), predict_proba(merged, splits.X_new), atol=1e-5
        )
    )
    return results


# -- the whole bench -----------------------------------------------------------------------------
def run_industrial(settings: IndustrialSettings | None = None) -> dict[str, Any]:
    """Measure every technique; write report, config and figures; return the full report."""
    from level4_fraud.abtest import ab_bench
    from level4_fraud.models import predict_proba, train_torch_model

    settings = settings or load_industrial_settings()
    seed_everything(settings.seed)
    report: dict[str, Any] = {}
    with atomic_dir(level_dir(4) / "industrial") as out:
        start = time.perf_counter()
        log.info("simulating the world and building features")
        splits = prepare_data(settings)
        report["data"] = {
            name: int(len(getattr(splits, f"y_{name}")))
            for name in ("train", "test", "adapt", "new")
        } | {
            f"frauds_{name}": int(getattr(splits, f"y_{name}").sum())
            for name in ("train", "test", "adapt", "new")
        }
        log.info("training the deployed FraudNet")
        deployed = train_torch_model(splits.X_train, splits.y_train, _torch_config(settings))
        deployed = deployed.cpu().eval()
        report["deployed_ap"] = _ap(splits.y_test, predict_proba(deployed, splits.X_test))
        log.info("DDP 1 vs %d processes", settings.ddp.nproc)
        report["ddp"] = bench_ddp(settings, splits, out)
        log.info("quantization and ONNX")
        report["quantization"] = bench_quantization(settings, splits, deployed, out)
        log.info("distillation")
        report["distillation"] = bench_distillation(settings, splits, deployed)
        log.info("adaptation to the new pattern")
        report["adaptation"] = bench_adaptation(settings, splits, deployed)
        log.info("A/B test operating characteristics")
        report["abtest"] = ab_bench(settings.ab_experiments, settings.seed)
        report["seconds"] = time.perf_counter() - start
        report["bench"] = bench_keys(report)
        write_json(out / "report.json", report)
        write_json(out / "config.json", dump_settings(settings))
        write_text(out / "tables.md", markdown_tables(report))
        plot_report(report, out)
    _log_mlflow(report, settings)
    return report


def bench_keys(report: dict[str, Any]) -> dict[str, Any]:
    """The 14 flat benchmark keys of issue 7 from a full report."""
    quant = report["quantization"]
    engines = quant["engines"]
    adaptation = report["adaptation"]
    nproc = next(
        k for k in report["ddp"] if k.startswith("throughput_") and k != "throughput_1proc"
    )
    keys = {
        "ddp_2proc_matches_single": bool(report["ddp"]["matches_single"]),
        "ddp_throughput_1proc": round(report["ddp"]["throughput_1proc"], 1),
        "ddp_throughput_2proc": round(report["ddp"][nproc], 1),
        "quant_speedup": round(engines[quant["int8_engine"]]["speedup"], 3),
        "quant_ap_loss": round(engines[quant["int8_engine"]]["ap_loss_pts"], 3),
        "onnx_speedup": round(engines["onnx_fp32"]["speedup"], 3),
        "student_param_ratio": round(report["distillation"]["param_ratio_vs_fraudnet"], 2),
        "student_ap_loss": round(report["distillation"]["student_ap_loss_pts"], 3),
        "lora_trainable_params": int(adaptation["lora"]["trainable_params"]),
        "lora_ap_new_pattern": round(adaptation["lora"]["ap_new_pattern"], 4),
        "full_finetune_ap_new_pattern": round(adaptation["full_finetune"]["ap_new_pattern"], 4),
        "no_adapt_ap_new_pattern": round(adaptation["no_adaptation"]["ap_new_pattern"], 4),
        "ab_false_win_rate": round(report["abtest"]["ab_false_win_rate"], 4),
        "ab_power": round(report["abtest"]["ab_power"], 4),
    }
    assert tuple(keys) == BENCH_KEYS
    return keys


def industrial_bench(settings: IndustrialSettings | None = None) -> dict[str, Any]:
    """Run every measurement; return exactly the issue's flat benchmark keys."""
    return run_industrial(settings)["bench"]


def markdown_tables(report: dict[str, Any]) -> str:
    """The README's tables, rendered from a report (so the README is filled from the JSON)."""
    ddp = report["ddp"]
    nproc = next(k for k in ddp if k.startswith("throughput_") and k != "throughput_1proc")
    lines = [
        "| DDP (gloo, CPU, 1 thread per process) | 1 process | "
        f"{nproc.removeprefix('throughput_').removesuffix('proc')} processes |",
        "|---|---|---|",
        f"| training rows / s | {ddp['throughput_1proc']:,.0f} | {ddp[nproc]:,.0f} |",
        f"| test AP | {ddp['ap_1proc']:.4f} | {ddp[nproc.replace('throughput', 'ap')]:.4f} |",
        f"| max weight difference vs 1 process | – | {ddp['max_param_diff']:.1e} |",
        f"| max fraud-score difference vs 1 process | – | {ddp['max_score_diff']:.1e} |",
        f"| max difference between replicas | – | {ddp['replica_max_abs_diff']:.1e} |",
        "",
        "| scoring engine (1 thread) | rows / s (batch) | speed-up | one-row latency (ms) "
        "| AP | AP loss (pts) | size (KB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ENGINES:
        row = report["quantization"]["engines"][name]
        lines.append(
            f"| {name} | {row['throughput']:,.0f} | {row['speedup']:.2f}× | "
            f"{row['latency_ms']:.3f} | {row['ap']:.4f} | {row['ap_loss_pts']:+.2f} | "
            f"{row['size_bytes'] / 1024:.0f} |"
        )
    d = report["distillation"]
    lines += [
        "",
        "| distillation | parameters | AP | one-row latency (ms) |",
        "|---|---|---|---|",
        f"| teacher ensemble (FraudNet + LightGBM + isolation forest) | "
        f"{d['teacher_fraudnet_params']:,} + {d['teacher_lightgbm_params']:,} tree numbers + forest"
        f" | {d['teacher_ap']:.4f} | {d['teacher_latency_ms']:.2f} |",
        f"| teacher's FraudNet alone | {d['teacher_fraudnet_params']:,} | "
        f"{d['teacher_fraudnet_ap']:.4f} | – |",
        f"| student on {'calibrated ' if d.get('teacher_calibrated') else ''}soft scores | "
        f"{d['student_params']:,} | {d['student_ap']:.4f} | "
        f"{d['student_latency_ms']:.3f} |",
        f"| same student on hard labels only | {d['student_params']:,} | "
        f"{d['student_hard_labels_only_ap']:.4f} | – |",
        "",
        "| adapting to card testing | trainable params | seconds | AP new pattern "
        "| AP old patterns |",
        "|---|---|---|---|---|",
    ]
    for name in ADAPTATIONS:
        row = report["adaptation"][name]
        lines.append(
            f"| {name} | {row['trainable_params']:,} | {row['seconds']:.1f} | "
            f"{row['ap_new_pattern']:.4f} | {row['ap_old_patterns']:.4f} |"
        )
    ab = report["abtest"]
    lines += [
        "",
        "| A/B design (fixed horizon vs peeking daily) | fixed horizon | peeking |",
        "|---|---|---|",
        f"| false-win rate (no true difference) | {ab['ab_false_win_rate']:.3f} | "
        f"{ab['ab_peeking_false_win_rate']:.3f} |",
        f"| power (true +{ab['settings']['minimum_effect']:.2f} catch rate) | "
        f"{ab['ab_power']:.3f} | {ab['ab_peeking_power']:.3f} |",
        f"| labelled frauds needed per arm | {ab['ab_required_per_arm']} | – |",
        f"| median decision day (incl. {ab['settings']['label_delay_days']}-day label delay) | "
        f"{ab['ab_median_decision_day']:.0f} | – |",
    ]
    return "\n".join(lines) + "\n\n"


def plot_report(report: dict[str, Any], out: Path) -> list[Path]:
    """Two pictures: scoring engines (throughput, AP) and adaptation (AP, new and old patterns)."""
    import matplotlib.pyplot as plt

    from ml_common.plots import save_figure  # importing it selects the headless Agg backend

    paths = []
    engines = report["quantization"]["engines"]
    names = list(ENGINES)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].bar(names, [engines[n]["throughput"] / 1000 for n in names], color="#4477aa")
    axes[0].set_ylabel("thousand rows / s (1 thread)")
    axes[0].set_title("Scoring throughput, batches of 1024")
    axes[1].bar(names, [engines[n]["ap"] for n in names], color="#ee6677")
    axes[1].set_ylim(min(engines[n]["ap"] for n in names) - 0.02, 1.0)
    axes[1].set_title("Average precision, same test rows")
    for ax in axes:
        ax.tick_params(axis="x", rotation=20)
    paths.append(save_figure(fig, out / "quantization.png"))

    adaptation = report["adaptation"]
    variants = list(ADAPTATIONS)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    x = np.arange(len(variants))
    ax.bar(x - 0.2, [adaptation[v]["ap_new_pattern"] for v in variants], 0.4, label="new pattern")
    ax.bar(x + 0.2, [adaptation[v]["ap_old_patterns"] for v in variants], 0.4, label="old patterns")
    ax.set_xticks(x, [f"{v}\n{adaptation[v]['trainable_params']} trainable" for v in variants])
    ax.set_ylabel("average precision")
    ax.set_title("Adapting to card testing")
    ax.legend()
    paths.append(save_figure(fig, out / "adaptation.png"))

    example = report["abtest"]["example"]
    days = [row["day"] for row in example["daily"]]
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.plot(days, [row["p_value"] for row in example["daily"]], marker=".", label="daily p-value")
    ax.axhline(report["abtest"]["settings"]["alpha"], color="grey", ls=":", label="alpha")
    if example["decision_day"] is not None:
        ax.axvline(example["decision_day"], color="green", label="planned sample reached")
    if example["peeking_day"] is not None:
        ax.axvline(example["peeking_day"], color="red", ls="--", label="first p < alpha (peeking)")
    ax.set_yscale("log")
    ax.set_xlabel("calendar day (labels arrive after the delay)")
    ax.set_title(f"A/B example: {example['decision']} on day {example['decision_day']}")
    ax.legend(fontsize=8)
    paths.append(save_figure(fig, out / "abtest.png"))
    return paths


def _log_mlflow(report: dict[str, Any], settings: IndustrialSettings) -> None:
    """One MLflow run per technique in the level's experiment, metrics flattened."""
    from ml_common.tracking import setup_mlflow

    mlflow = setup_mlflow("level4_fraud")
    sections = {
        "ddp": report["ddp"],
        "quantization": {
            f"{engine}_{k}": v
            for engine, row in report["quantization"]["engines"].items()
            for k, v in row.items()
        },
        "distillation": report["distillation"],
        "adaptation": {
            f"{variant}_{k}": v
            for variant, row in report["adaptation"].items()
            for k, v in row.items()
        },
        "abtest": {k: v for k, v in report["abtest"].items() if k.startswith("ab_")},
    }
    for name, values in sections.items():
        with mlflow.start_run(run_name=f"industrial-{name}"):
            mlflow.set_tag("stage", "industrial")
            mlflow.log_params({"seed": settings.seed, "technique": name})
            mlflow.log_metrics(
                {k: float(v) for k, v in values.items() if isinstance(v, (int, float, bool))}
            )


def add_subcommands(subparsers: Any) -> None:
    """Part 2's commands for ``python -m level4_fraud``: industrial, tune, export-onnx, ddp."""
    industrial = subparsers.add_parser(
        "industrial", help="measure DDP, quantization, distillation, LoRA and the A/B test"
    )
    industrial.add_argument("--settings", type=Path, default=None, help="YAML (industrial.yaml)")
    industrial.set_defaults(func=_cli_industrial)

    tune = subparsers.add_parser("tune", help="Optuna search over FraudNet's hyperparameters")
    tune.add_argument("--settings", type=Path, default=None, help="YAML (industrial.yaml)")
    tune.add_argument("--trials", type=int, default=10)
    tune.set_defaults(func=_cli_tune)

    export = subparsers.add_parser(
        "export-onnx", help="train champion/challenger nets and write the ONNX scoring bundle"
    )
    export.add_argument("--out", type=Path, required=True, help="folder to mount at /srv/model")
    export.add_argument("--settings", type=Path, default=None, help="YAML (industrial.yaml)")
    export.set_defaults(func=_cli_export)


def _cli_industrial(args: Any) -> int:
    report = run_industrial(load_industrial_settings(args.settings))
    print(markdown_tables(report))
    for key, value in report["bench"].items():
        print(f"{key:32s} {value}")
    print(f"report: {level_dir(4) / 'industrial' / 'report.json'}")
    return 0


def _cli_tune(args: Any) -> int:
    from level4_fraud.optimize.tune import tune

    settings = load_industrial_settings(args.settings)
    result = tune(settings, prepare_data(settings), n_trials=args.trials)
    path = write_json(level_dir(4) / "tune" / "trials.json", result)
    write_json(path.with_name("config.json"), dump_settings(settings))
    for trial in result["trials"]:
        print(trial)
    print(f"best walk-forward AP {result['best_value']:.4f} with {result['best_params']}")
    print(f"trials: {path}; MLflow parent run {result['parent_run_id']}")
    return 0


def _cli_export(args: Any) -> int:
    from level4_fraud.models import train_torch_model
    from level4_fraud.optimize.quantize import export_bundle

    settings = load_industrial_settings(args.settings)
    splits = prepare_data(settings)
    champion = train_torch_model(splits.X_train, splits.y_train, _torch_config(settings))
    challenger = train_torch_model(
        splits.X_train, splits.y_train, _torch_config(settings, seed=settings.seed + 1)
    )
    versions = {
        "champion": f"fraudnet-seed{settings.seed}",
        "challenger": f"fraudnet-seed{settings.seed + 1}",
    }
    export_bundle(args.out, champion.cpu(), splits.features, 0.5, challenger.cpu(), versions)
    print(f"ONNX bundle written to {args.out}")
    return 0
