"""A churn table the pipeline has never seen, run through a YAML config only (issue 13).

The test writes a small CSV (target ``left`` with labels ``gone`` / ``stayed``, integer and text
columns, an id) and a YAML that maps it, runs ``bench --config`` (the option after the command),
and checks what a user would: the summary and benchmark keys for *their* dataset, and a
registered model whose signature takes the raw rows, without the target, and which loads and
predicts in a fresh Python where this repository cannot be imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from level2_churn.__main__ import main
from ml_common.paths import bench_dir, level_dir


def write_table(path: Path, n: int = 900, seed: int = 3) -> Path:
    """A small churn table unlike Telco: its own column names, labels and types."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n)  # int64 in the CSV
    calls = rng.poisson(2, n)
    plan = rng.choice(["basic", "plus", "max"], n)
    logit = -0.5 - 0.04 * tenure + 0.5 * calls + 0.8 * (plan == "max")
    left = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "gone", "stayed")
    pd.DataFrame(
        {
            "account": np.arange(1000, 1000 + n),
            "plan": plan,
            "tenure_months": tenure,
            "support_calls": calls,
            "monthly_bill": rng.normal(40, 10, n).round(2),
            "left": left,
        }
    ).to_csv(path, index=False)
    return path


def write_config(folder: Path, csv: Path) -> Path:
    config = folder / "my_churn.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            run: [my_table]
            experiment: level2-own-table
            model_name_prefix: my-churn
            datasets:
              my_table:
                kind: snapshot
                source: {csv}
                columns:
                  id: account
                  target: left
                  positive_label: gone
                  negative_label: stayed
                  categorical: [plan]
                  numeric: [tenure_months, support_calls, monthly_bill]
            cv: {{folds: 3, repeats: 1, imbalance_methods: [none, class_weight]}}
            tune: {{n_trials: 3, folds: 2}}
            mlp: {{epochs: 2}}
            """
        )
    )
    return config


LOAD_OUTSIDE = """
import json, sys
# This repository's packages must not be importable: the model has to stand on its own.
for name in ("level2_churn", "ml_common", "tests"):
    sys.modules[name] = None
import mlflow.pyfunc
import numpy as np
import pandas as pd
uri, csv = sys.argv[1], sys.argv[2]
rows = pd.read_csv(csv).drop(columns=["left"]).head(20)
assert str(rows["tenure_months"].dtype) == "int64"
# What people send: an integer column as floats, and missing values in numeric columns.
rows = rows.astype({"support_calls": float})
rows.loc[3, "tenure_months"] = np.nan  # the int column becomes float with a gap
rows.loc[4, "monthly_bill"] = np.nan
model = mlflow.pyfunc.load_model(uri)
out = model.predict(rows)
print(json.dumps({"columns": list(out.columns), "values": out.to_numpy().tolist(),
                  "threshold": model.metadata.metadata["threshold"]}))
"""


@pytest.fixture(scope="module")
def own_run(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("own_table")
    csv = write_table(folder / "customers.csv")
    config = write_config(folder, csv)
    assert main(["run", "--config", str(config)]) == 0
    registered = json.loads((level_dir(2) / "my_table" / "registered.json").read_text())
    metrics = json.loads((level_dir(2) / "my_table" / "train" / "metrics.json").read_text())
    return {"csv": csv, "registered": registered, "config": config, "metrics": metrics}


def test_bench_keys_of_the_configured_dataset(own_run: dict) -> None:
    """The keys one benchmark case (``benchmark.table_case``) reports for this table."""
    from level2_churn.benchmark import table_keys

    keys = table_keys("my_table", own_run["metrics"], alpha=0.05)
    for family in ("lr", "lgbm_default", "lgbm_tuned", "mlp"):
        for stat in ("auc_mean", "auc_std", "ap_mean", "ap_std"):
            assert f"my_table_{family}_{stat}" in keys, (family, stat)
    chosen = keys["my_table_chosen_family"]
    assert chosen in ("lr", "lgbm_default", "lgbm_tuned", "mlp")
    assert keys["my_table_champion_ap_mean"] == keys[f"my_table_{chosen}_ap_mean"]
    assert keys["my_table_lr_auc_mean"] > 0.7  # the planted signal is found
    assert 0 <= keys["my_table_champion_vs_best_baseline_corrected_p"] <= 1
    assert keys["my_table_champion_below_best_baseline"] is False
    assert chosen in own_run["metrics"]["selection"]["reason"]
    summary = json.loads((level_dir(2) / "summary.json").read_text())
    assert summary["chosen"]["my_table"]["family"] == chosen


@pytest.mark.slow
def test_bench_runs_the_table_as_a_matrix_case(own_run: dict) -> None:
    assert main(["bench", "--config", str(own_run["config"])]) == 0
    bench = json.loads((bench_dir() / "level2.json").read_text())
    assert bench["tables"] == "my_table" and bench["tables_in_matrix"] == 1
    assert bench["tables_where_champion_below_best_baseline"] == 0
    assert bench["my_table_chosen_family"] == own_run["metrics"]["chosen_family"]
    assert not any(key.startswith("telco") for key in bench)


def test_registered_model_uses_the_configured_target_and_raw_types(own_run: dict) -> None:
    inputs = " ".join(own_run["registered"]["signature_inputs"])
    assert "left" not in inputs and "account" not in inputs
    # Numbers are declared Any (MLflow's double refuses int64, its long refuses floats and
    # missing values): ints, floats and missing values all pass; the model refuses text.
    assert "'tenure_months': Any" in inputs and "'plan': string" in inputs


def test_registered_model_loads_and_predicts_outside_the_repository(
    own_run: dict, tmp_path: Path
) -> None:
    import mlflow

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")} | {
        "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri()
    }
    result = subprocess.run(
        [sys.executable, "-c", LOAD_OUTSIDE, own_run["registered"]["model_uri"], own_run["csv"]],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the repository root, so it is not on sys.path either
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outside = json.loads(result.stdout.strip().splitlines()[-1])
    assert outside["columns"] == ["churn_probability", "churn"]
    values = np.array(outside["values"])
    assert values.shape == (20, 2) and np.all((values[:, 0] > 0) & (values[:, 0] < 1))
    threshold = outside["threshold"]
    assert threshold == own_run["registered"]["threshold"]
    np.testing.assert_array_equal(values[:, 1], (values[:, 0] >= threshold).astype(int))
    # The same rows through the predict command give the same probabilities.
    csv = tmp_path / "new.csv"
    rows = pd.read_csv(own_run["csv"]).drop(columns=["left"]).head(20)
    rows.loc[3, "tenure_months"] = np.nan
    rows.loc[4, "monthly_bill"] = np.nan
    rows.to_csv(csv, index=False)
    out = tmp_path / "scored.csv"
    uri = own_run["registered"]["model_uri"]
    assert (
        main(
            [
                "predict",
                "--config",
                str(own_run["config"]),
                "--model",
                uri,
                "--input",
                str(csv),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    scored = pd.read_csv(out)
    assert list(scored.columns) == ["account", "churn_probability", "churn"]
    np.testing.assert_allclose(scored["churn_probability"], values[:, 0], rtol=1e-6)


def test_predict_refuses_bad_input_in_one_line(own_run: dict, tmp_path: Path, capsys) -> None:
    csv = tmp_path / "bad.csv"
    pd.read_csv(own_run["csv"]).drop(columns=["plan"]).head(5).to_csv(csv, index=False)
    uri = own_run["registered"]["model_uri"]
    args = ["predict", "--config", str(own_run["config"]), "--model", uri, "--input", str(csv)]
    assert main(args) == 2
    assert "missing column(s) ['plan']" in capsys.readouterr().err
    assert main([*args[:4], "models:/no-such-model@champion", *args[5:]]) == 2
    assert "cannot load the model" in capsys.readouterr().err


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_mlflow_models_serve_scores_a_batch(own_run: dict, tmp_path: Path) -> None:
    """The README's batch example: ``mlflow models serve --env-manager local`` and one POST."""
    import signal
    import time

    import httpx
    import mlflow

    port = _free_port()
    bin_dir = Path(sys.executable).parent  # mlflow execs `uvicorn` by name: this venv's
    env = os.environ | {
        "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    mlflow_cli = bin_dir / "mlflow"
    server = subprocess.Popen(
        [
            str(mlflow_cli),
            "models",
            "serve",
            "-m",
            own_run["registered"]["model_uri"],
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "serve.log", "w"),  # noqa: SIM115 - closed with the process
        cwd=tmp_path,
        env=env,
        start_new_session=True,  # its own process group: stopped as one below
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
            time.sleep(1)
        rows = pd.read_csv(own_run["csv"]).drop(columns=["left", "account"]).head(5)
        rows.loc[0, "monthly_bill"] = None  # a missing value travels as JSON null
        body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
        answer = httpx.post(f"{url}/invocations", json=body, timeout=60)
        assert answer.status_code == 200, answer.text[:500]
        predictions = pd.DataFrame(answer.json()["predictions"])
        assert list(predictions.columns) == ["churn_probability", "churn"]
        assert len(predictions) == 5 and predictions["churn"].isin([0, 1]).all()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_promotion_needs_a_strictly_higher_selection_score(own_run: dict) -> None:
    """README: a new version becomes champion only if it *beats* the champion; a tie does not."""
    import joblib

    from level2_churn import ingest, stages
    from level2_churn.register import register_model
    from level2_churn.settings import load_config
    from ml_common.tracking import CHAMPION, alias_version, setup_mlflow

    cfg = load_config(own_run["config"])
    champion = own_run["registered"]
    tie = stages.register_stage(cfg, "my_table")  # same metrics: the same selection score
    assert tie["selection_ap"] == champion["selection_ap"] and tie["alias"] == "challenger"
    assert alias_version(champion["model_name"], CHAMPION) == champion["version"]

    folder = stages.dataset_dir("my_table") / "train"
    metrics = json.loads((folder / "metrics.json").read_text())
    dataset = cfg.datasets["my_table"]
    mlflow = setup_mlflow(cfg.experiment)
    with mlflow.start_run(run_name="my_table-train-better") as run:  # a new training run
        pass
    better = register_model(
        cfg,
        "my_table",
        joblib.load(folder / "model.joblib"),
        metrics
        | {"selection_ap": metrics["selection_ap"] + 1e-6, "mlflow_run_id": run.info.run_id},
        ingest.read_raw_rows(dataset, rows=20),
        dataset.columns,
    )
    assert better["alias"] == CHAMPION
    assert alias_version(champion["model_name"], CHAMPION) == better["version"]
