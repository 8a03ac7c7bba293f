"""Quantization, ONNX export, distillation, LoRA and the Optuna search, on small data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score
from torch import nn

from level4_fraud.config import TorchConfig
from level4_fraud.data.protocol import walk_forward_folds
from level4_fraud.experiments.distill import (
    calibrate_teacher,
    count_parameters,
    lightgbm_parameters,
    train_student,
)
from level4_fraud.experiments.lora import LoRALinear, add_lora, merge_lora, trainable_parameters
from level4_fraud.experiments.quantize import (
    compare_engines,
    export_onnx,
    measure,
    onnx_scorer,
    quantize_dynamic_int8,
    quantize_onnx_static,
    torch_scorer,
)
from level4_fraud.models.fraudnet import FraudNet, predict_proba, train_torch_model


def _data(n: int = 8000, seed: int = 0, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 15)).astype(np.float32)
    signal = X[:, 0] + 0.7 * X[:, 1] - 0.5 * X[:, 2] + shift * X[:, 3]
    y = (signal + rng.normal(scale=0.6, size=n) > 2.0).astype(np.float32)
    return X, y


@pytest.fixture(scope="module")
def trained() -> tuple[FraudNet, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = _data()
    X_test, y_test = _data(4000, seed=1)
    model = train_torch_model(X, y, TorchConfig(epochs=3, batch_size=256, device="cpu"))
    return model.cpu().eval(), X, y, X_test, y_test


# -- quantization and ONNX -----------------------------------------------------------------------
def test_dynamic_int8_replaces_linear_layers_and_keeps_scores(trained) -> None:
    model, _, _, X_test, _ = trained
    int8 = quantize_dynamic_int8(model)
    assert not any(type(m) is nn.Linear for m in int8.modules())
    assert any(type(m) is nn.Linear for m in model.modules())  # the original is untouched
    diff = np.abs(torch_scorer(int8)(X_test) - torch_scorer(model)(X_test))
    # Measured over model seeds 0-2: max 0.053-0.066, mean 0.0034-0.0035.
    assert diff.max() < 0.08 and diff.mean() < 0.0042


def test_onnx_export_matches_torch(trained, tmp_path: Path) -> None:
    model, _, _, X_test, _ = trained
    path = export_onnx(model, tmp_path / "m.onnx", X_test.shape[1])
    np.testing.assert_allclose(
        onnx_scorer(path)(X_test), predict_proba(model, X_test), atol=1e-5, rtol=1e-4
    )


def test_engines_compared_on_the_same_rows(trained, tmp_path: Path) -> None:
    model, X, _, X_test, y_test = trained
    results = compare_engines(model, X_test, y_test, X, tmp_path, batch_size=512, seconds=0.2)
    assert set(results) == {"torch_fp32", "torch_int8_dynamic", "onnx_fp32", "onnx_int8_static"}
    assert results["torch_fp32"]["speedup"] == 1.0
    for row in results.values():
        assert row["throughput"] > 0 and row["latency_ms"] > 0
        # int8 keeps the ranking on an easy problem. Measured over model seeds 0-2, in AP points:
        # dynamic -0.10 to -0.01, static 0.016 to 0.086 (spread 0.09).
        assert abs(row["ap_loss_pts"]) < 0.2
    assert results["onnx_fp32"]["ap_loss_pts"] == pytest.approx(0.0, abs=0.01)
    # 0.437 on every seed: fixed by the architecture (int8 weights, float biases and scales).
    assert results["onnx_int8_static"]["size_bytes"] < 0.45 * results["onnx_fp32"]["size_bytes"]


def test_static_int8_quantizes_weights_and_inputs_but_keeps_the_logit_float(
    trained, tmp_path: Path
) -> None:
    import onnx

    model, X, _, X_test, y_test = trained
    source = export_onnx(model, tmp_path / "m.onnx", X_test.shape[1])
    scores = {}
    for float_outputs in (True, False):
        path = quantize_onnx_static(
            source, tmp_path / f"m{float_outputs}.int8.onnx", X[:4096], float_outputs=float_outputs
        )
        graph = onnx.load(str(path)).graph
        producer = {out: node.op_type for node in graph.node for out in node.output}
        ops = [node.op_type for node in graph.node]
        logit_from = producer[graph.output[0].name]
        # Every Gemm reads dequantized int8 inputs; int8 weights are stored as initializers.
        assert ops.count("Gemm") == 3 and ops.count("QuantizeLinear") >= 3
        assert any(init.data_type == onnx.TensorProto.INT8 for init in graph.initializer)
        # Quantized logits come out of a DequantizeLinear; float ones straight from the net.
        assert (logit_from == "DequantizeLinear") is not float_outputs
        scores[float_outputs] = onnx_scorer(path)(X_test)
    reference = predict_proba(model, X_test)
    # Float logits: scores within int8 input noise (measured max 0.030-0.039 over model seeds
    # 0-2); quantized logits: at most 256 distinct values (measured 210-220).
    assert np.abs(scores[True] - reference).max() < 0.05
    assert len(np.unique(scores[False])) <= 256 < len(np.unique(scores[True]))
    ap = average_precision_score(y_test, reference)
    loss = {k: ap - average_precision_score(y_test, s) for k, s in scores.items()}
    # Measured over model seeds 0-2: 0.0002-0.0009 AP with float logits, 0.0069-0.0108 with
    # quantized ones.
    assert loss[True] < 0.002 and loss[False] > 0.004 and loss[False] > loss[True]


def test_measure_counts_rows() -> None:
    calls = []
    result = measure(
        lambda X: calls.append(len(X)) or np.zeros(len(X)), np.zeros((100, 3)), 10, 0.05, 5
    )
    assert result["throughput"] > 0 and set(calls) <= {10, 1}


# -- distillation --------------------------------------------------------------------------------
def test_student_learns_the_teacher_with_far_fewer_parameters(trained) -> None:
    teacher, X, y, X_test, y_test = trained
    soft = predict_proba(teacher, X)
    student = train_student(X, soft, y, hidden=(8,), hard_weight=0.2, epochs=6, batch_size=256)
    assert count_parameters(teacher) >= 10 * count_parameters(student)
    teacher_ap = average_precision_score(y_test, predict_proba(teacher, X_test))
    student_ap = average_precision_score(y_test, predict_proba(student, X_test))
    # Measured over teacher seeds 0-2: the student is -0.001 to 0.008 AP below the teacher.
    assert student_ap > teacher_ap - 0.02
    # The student imitates the teacher's scores, not just the labels (measured 0.958-0.959).
    corr = np.corrcoef(predict_proba(student, X_test), predict_proba(teacher, X_test))[0, 1]
    assert corr > 0.95


def test_calibrated_teacher_keeps_the_ranking_and_fixes_the_scale() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(5000) < 0.02).astype(np.float32)
    # An ensemble-like score: informative but offset (a percentile term lifts every row).
    score = 0.1 * rng.random(5000) + 0.4 * y * rng.random(5000) + 0.05
    calibrated = calibrate_teacher(score, y)
    assert calibrated.min() >= 0 and calibrated.max() <= 1
    assert calibrated.mean() == pytest.approx(y.mean(), abs=1e-6)  # isotonic keeps the base rate
    order = np.argsort(score)
    assert np.all(np.diff(calibrated[order]) >= -1e-12)  # monotone in the teacher's score
    assert calibrated.mean() < score.mean()


def test_student_rejects_bad_hard_weight() -> None:
    X, y = _data(100)
    with pytest.raises(ValueError, match="hard_weight"):
        train_student(X, y, y, hard_weight=1.5)


def test_lightgbm_parameter_count() -> None:
    import lightgbm as lgb

    X, y = _data(2000)
    model = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(X, y)
    # 5 trees x 4 leaves: 3 splits each -> 5 * (3 * 3 + 4).
    assert lightgbm_parameters(model) == 5 * (3 * 3 + 4)


# -- LoRA ----------------------------------------------------------------------------------------
def test_lora_starts_as_the_base_and_trains_only_adapters(trained) -> None:
    model, _, _, X_test, _ = trained
    adapted = add_lora(model, rank=2, alpha=4.0)
    np.testing.assert_allclose(predict_proba(adapted, X_test), predict_proba(model, X_test))
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    expected = sum(2 * (m.in_features + m.out_features) for m in linears)
    assert trainable_parameters(adapted) == expected
    assert all(p.requires_grad for p in model.parameters())  # the deployed model is untouched


def test_lora_matches_a_plain_linear_and_merges_exactly() -> None:
    torch.manual_seed(0)
    base = nn.Linear(6, 3)
    layer = LoRALinear(base, rank=2, alpha=4.0)
    with torch.no_grad():
        layer.lora_b.normal_()
    x = torch.randn(5, 6)
    manual = x @ (base.weight + 2.0 * layer.lora_b @ layer.lora_a).T + base.bias
    torch.testing.assert_close(layer(x), manual)
    torch.testing.assert_close(layer.merged()(x), manual)
    with pytest.raises(ValueError, match="rank"):
        LoRALinear(base, rank=0)


def test_lora_adapts_to_a_shifted_pattern_with_base_frozen(trained) -> None:
    model, _, _, _, _ = trained
    X_new, y_new = _data(4000, seed=5, shift=2.5)  # a new signal the model never used
    X_eval, y_eval = _data(4000, seed=6, shift=2.5)
    before = average_precision_score(y_eval, predict_proba(model, X_eval))
    adapted = add_lora(model, rank=2, alpha=4.0)
    frozen = {n: p.clone() for n, p in adapted.named_parameters() if not p.requires_grad}
    optimizer = torch.optim.Adam([p for p in adapted.parameters() if p.requires_grad], lr=5e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    data = torch.utils.data.TensorDataset(torch.from_numpy(X_new), torch.from_numpy(y_new))
    for _ in range(4):
        for xb, yb in torch.utils.data.DataLoader(data, batch_size=256, shuffle=True):
            optimizer.zero_grad()
            loss_fn(adapted(xb), yb).backward()
            optimizer.step()
    for name, parameter in adapted.named_parameters():
        if name in frozen:
            assert torch.equal(parameter, frozen[name])
    merged = merge_lora(adapted)
    after = average_precision_score(y_eval, predict_proba(merged, X_eval))
    # Measured over model seeds 0-2: AP 0.40-0.43 before, +0.52 to +0.55 after.
    assert after > before + 0.45
    np.testing.assert_allclose(
        predict_proba(merged, X_eval), predict_proba(adapted, X_eval), atol=1e-5
    )


# -- the Optuna search ---------------------------------------------------------------------------
def test_walk_forward_folds_never_train_on_the_future() -> None:
    # The protocol's default window: 35 days from day 37, 7-day delay, weekly test folds.
    folds = walk_forward_folds(37, 35, n_folds=2, delay_days=7, test_days=7)
    assert folds == [(37, 58, 65, 72), (37, 51, 58, 65)]  # newest first
    for train_start, train_stop, test_start, test_stop in folds:
        assert train_start >= 37 and test_stop <= 72  # inside the training window
        assert train_stop + 7 == test_start  # the label delay between them
        assert test_stop - test_start == 7
    # A window too short for a fold's training days gives fewer folds, never a negative one.
    assert walk_forward_folds(37, 14, n_folds=2, delay_days=7, test_days=7) == []


def test_tune_logs_trials_to_mlflow() -> None:
    from types import SimpleNamespace

    from level4_fraud.config import IndustrialSettings
    from level4_fraud.training.tune import tune

    X, y = _data(2100)
    settings = IndustrialSettings(world={"train_days": 21})
    days = np.repeat(np.arange(30, 51), 100)  # the window's 21 days (warm-up 30), 100 rows each
    data = SimpleNamespace(X_train=X, y_train=y, day_train=days)
    result = tune(settings, data, n_trials=2, n_folds=1)
    assert len(result["trials"]) == 2
    assert result["best_value"] == max(t["value"] for t in result["trials"])
    # The objective really scores the model: the best trial's settings, retrained on the same
    # fold (same seed, one thread: deterministic), give the AP the search reported.
    w = settings.world
    ((a, b, c, d),) = walk_forward_folds(w.warmup_days, w.train_days, 1, w.delay_days, w.test_days)
    train, test = (days >= a) & (days < b), (days >= c) & (days < d)
    p = result["best_params"]
    config = TorchConfig(
        hidden=(p["hidden_1"], p["hidden_2"]) if p["hidden_2"] else (p["hidden_1"],),
        dropout=p["dropout"], lr=p["lr"], batch_size=p["batch_size"], epochs=p["epochs"],
        seed=settings.seed, device=settings.device,
    )  # fmt: skip
    model = train_torch_model(X[train], y[train], config)
    ap = average_precision_score(y[test], predict_proba(model, X[test]))
    assert result["best_value"] == pytest.approx(ap, abs=1e-6)
    assert ap > 3 * y[test].mean()  # and the model learned the planted signal
    import mlflow

    runs = mlflow.search_runs(experiment_names=["level4_fraud"])
    children = runs[runs["tags.mlflow.parentRunId"] == result["parent_run_id"]]
    assert len(children) == 2 and children["metrics.walk_forward_ap"].notna().all()


# -- the whole industrial bench ------------------------------------------------------------------
TINY_WORLD = {
    "n_customers": 600,
    "n_terminals": 1200,
    "warmup_days": 30,
    "train_days": 14,
    "delay_days": 7,
    "test_days": 7,
    "new_pattern_day": 60,
    "adapt_days": 7,
}


def test_time_line_windows_hold_what_they_should() -> None:
    from level4_fraud.config import IndustrialSettings
    from level4_fraud.data.protocol import prepare_data

    splits = prepare_data(IndustrialSettings(world=TINY_WORLD))
    for name in ("train", "test", "adapt", "new"):
        X, y = getattr(splits, f"X_{name}"), getattr(splits, f"y_{name}")
        assert len(X) == len(y) > 0 and X.shape[1] == len(splits.features)
        assert y.sum() > 0
    # The new-pattern test window has card-testing fraud, mostly small amounts at night.
    amount = splits.features.index("tx_amount")
    night = splits.features.index("tx_during_night")
    assert np.median(splits.X_new[splits.y_new == 1, amount]) < 10
    assert splits.X_new[splits.y_new == 1, night].mean() > 0.8
    with pytest.raises(ValueError, match="before new_pattern_day"):
        prepare_data(IndustrialSettings(world={**TINY_WORLD, "new_pattern_day": 40}))


@pytest.mark.slow
def test_industrial_bench_returns_the_issue_keys_with_sane_values() -> None:
    from level4_fraud.config import load_config
    from level4_fraud.experiments.report import BENCH_KEYS, run_industrial
    from ml_common.paths import level_dir

    settings = load_config(
        industrial={
            "world": TINY_WORLD,
            "ab_experiments": 40,
            "model": {"epochs": 3},
            "distill": {"epochs": 6},
            "quant": {"seconds": 0.3},
        }
    )
    report = run_industrial(settings)
    bench = report["bench"]
    assert tuple(bench) == BENCH_KEYS
    assert bench["ddp_2proc_matches_single"] is True
    assert bench["ddp_throughput_1proc"] > 0 and bench["ddp_throughput_2proc"] > 0
    assert bench["pipeline_matches_single"] is True
    # 10,369 / 273 parameters, fixed by the two architectures (the issue's target is 10).
    assert bench["student_param_ratio"] >= 37
    # Figures below measured with these settings over industrial.seed 0-2 (the test runs 0).
    # int8 AP loss in points: -0.08, +0.10, -0.003.
    assert abs(bench["quant_ap_loss"]) < 0.3
    full_trainable = report["adaptation"]["full_finetune"]["trainable_params"]
    assert bench["lora_trainable_params"] < full_trainable
    # The deployed model has never seen card testing; adapting on a week of it must help. Gain
    # over no adaptation: LoRA +0.82 / +0.85 / +0.87, full fine-tuning +0.75 / +0.77 / +0.67.
    assert bench["lora_ap_new_pattern"] > bench["no_adapt_ap_new_pattern"] + 0.7
    assert bench["full_finetune_ap_new_pattern"] > bench["no_adapt_ap_new_pattern"] + 0.55
    assert report["adaptation"]["lora"]["merged_matches_adapters"]
    # 40 experiments each: false wins 0.0 / 0.05 / 0.025 (0.025 expected), power 0.85 / 0.85 /
    # 0.725 (0.8 planned).
    assert 0 <= bench["ab_false_win_rate"] <= 0.1 and bench["ab_power"] >= 0.7
    out = level_dir(4) / "industrial"
    assert {
        "report.json",
        "config.json",
        "tables.md",
        "quantization.png",
        "adaptation.png",
        "abtest.png",
    } <= {p.name for p in out.iterdir()}
