import json

import numpy as np

from ml_common import bench, report, tracking
from ml_common.paths import artifacts_dir, level_dir
from ml_common.plots import roc_pr_figure, save_figure


def test_tracking_defaults_to_sqlite_under_artifacts(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.default_tracking_uri() == f"sqlite:///{artifacts_dir() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.default_tracking_uri() == "http://127.0.0.1:5000"


def test_register_and_find_by_alias():
    mlflow = tracking.setup_mlflow("shared-tests")
    from mlflow import MlflowClient

    with mlflow.start_run() as run:
        mlflow.log_metric("score", 1.0)
        mlflow.log_text("weights", "model/weights.txt")
    client = MlflowClient()
    client.create_registered_model("shared-demo")
    source = f"{run.info.artifact_uri}/model"
    version = client.create_model_version("shared-demo", source, run_id=run.info.run_id).version
    assert tracking.alias_version("shared-demo", tracking.CHAMPION) is None
    tracking.set_alias("shared-demo", tracking.CHAMPION, version)
    assert tracking.alias_version("shared-demo", tracking.CHAMPION) == int(version)
    assert tracking.model_uri("shared-demo") == "models:/shared-demo@champion"


def test_bench_file_is_flat_and_has_machine():
    path = bench.write_bench(9, {"auc": np.float64(0.9), "ok": True}, seconds=1.234)
    payload = json.loads(path.read_text())
    assert payload["auc"] == 0.9 and payload["ok"] is True and payload["seconds"] == 1.23
    assert payload["machine"]["cores"] >= 1
    try:
        bench.write_bench(9, {"nested": {"a": 1}}, seconds=0)
    except ValueError as exc:
        assert "nested" in str(exc)
    else:
        raise AssertionError("nested values must be rejected")


def test_report_table_replaces_only_between_markers(tmp_path):
    (tmp_path / "level1.json").write_text(
        json.dumps({"acc": 0.81, "seconds": 2, "machine": {"cores": 2}})
    )
    table = report.render_table(tmp_path)
    assert "`acc` | 0.81" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.START}\nold\n{report.END}\noutro\n")
    assert report.update_readme(readme, table)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text
    assert not report.update_readme(readme, table)


def test_roc_pr_figure_saved(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    path = save_figure(
        roc_pr_figure(y, {"noisy": y + rng.normal(0, 1, 200)}), level_dir(9) / "roc.png"
    )
    assert path.stat().st_size > 5_000


def test_psi_separates_shift_from_noise():
    from ml_common.drift import psi

    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 5000)
    assert psi(reference, rng.normal(0, 1, 5000)) < 0.02
    assert psi(reference, rng.normal(1, 1, 5000)) > 0.3
    assert psi(reference, np.array([])) == 0.0
    assert psi(np.ones(100), rng.normal(0, 1, 100)) == 0.0  # constant reference: no bins


def test_replace_section_keeps_the_text_around_and_names_missing_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- t:start -->\nold\n<!-- t:end -->\nb\n")
    assert report.replace_section(readme, "t", "| new |\n")
    assert readme.read_text() == "a\n<!-- t:start -->\n| new |\n<!-- t:end -->\nb\n"
    assert not report.replace_section(readme, "t", "| new |")  # same table: unchanged
    try:
        report.replace_section(readme, "other", "x")
    except ValueError as exc:
        assert "<!-- other:start -->" in str(exc)
    else:
        raise AssertionError("missing markers must be named")


def test_report_table_names_levels_without_a_benchmark(tmp_path):
    (tmp_path / "level2.json").write_text(json.dumps({"ap": 0.6, "seconds": 1, "machine": {}}))
    table = report.render_table(tmp_path)
    assert "`ap` | 0.6" in table
    for level in (1, 3, 4, 5):
        assert f"`make bench-level{level}`" in table
    assert "`make bench-level2`" not in table
