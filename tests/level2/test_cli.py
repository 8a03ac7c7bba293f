"""The command line: help, and bad config or data give one message and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from level2_churn.__main__ import main


def test_help_lists_the_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "level2_churn", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("run", "bench", "generate", "stage"):
        assert command in out


def test_bad_config_is_one_clear_message(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: forty-two\ntune: {n_trials: 0}\ndatasets: {}\n")
    assert main(["--config", str(bad), "stage", "prepare", "--dataset", "telco"]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "seed" in err and "tune.n_trials" in err  # every field named
    bad.write_text("run: [telco]\ndatasets: {}\n")
    assert main(["--config", str(bad), "stage", "prepare", "--dataset", "telco"]) == 2
    assert "run names unknown datasets ['telco']" in capsys.readouterr().err


def test_missing_snapshot_file_is_a_data_error(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "run: [mine]\ndatasets:\n  mine:\n    source: "
        + str(tmp_path / "nope.csv")
        + "\n    columns: {target: churn, numeric: [x]}\n"
    )
    assert main(["--config", str(cfg), "stage", "prepare", "--dataset", "mine"]) == 2
    assert "nope.csv: file not found" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["stage", "train", "--dataset", "nope"]])
def test_unknown_dataset(command: list[str], capsys) -> None:
    assert main(command) == 2
    assert "unknown dataset" in capsys.readouterr().err


def test_config_is_accepted_after_the_command_too(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: [telco]\ndatasets: {}\n")
    assert main(["stage", "prepare", "--dataset", "telco", "--config", str(bad)]) == 2
    assert "run names unknown datasets ['telco']" in capsys.readouterr().err


def _own_table(tmp_path: Path, labels: list[str], target: str = "left") -> Path:
    csv = tmp_path / "mine.csv"
    n = len(labels)
    pd.DataFrame({target: labels, "x": range(n)}).to_csv(csv, index=False)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"run: [mine]\ndatasets:\n  mine:\n    source: {csv}\n"
        "    columns: {target: left, positive_label: gone, numeric: [x]}\n"
    )
    return cfg


def test_a_third_target_value_is_refused(tmp_path: Path, capsys) -> None:
    cfg = _own_table(tmp_path, ["gone"] * 5 + ["stayed"] * 10 + ["maybe"] * 3)
    assert main(["stage", "prepare", "--dataset", "mine", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "mine.csv" in err and "'left'" in err and "'maybe' (3 rows)" in err


def test_missing_target_column_names_the_column_and_the_file(tmp_path: Path, capsys) -> None:
    cfg = _own_table(tmp_path, ["gone", "stayed"] * 5, target="churned")
    assert main(["stage", "prepare", "--dataset", "mine", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "mine.csv" in err and "missing column(s) 'left'" in err


def test_generate_needs_a_generated_dataset(tmp_path: Path, capsys) -> None:
    cfg = _own_table(tmp_path, ["gone", "stayed"] * 5)
    assert main(["generate", "--out", str(tmp_path / "raw"), "--config", str(cfg)]) == 2
    assert "no generated (kind: events) dataset" in capsys.readouterr().err
    assert not (tmp_path / "raw").exists()


def _table_config(tmp_path: Path, frame: pd.DataFrame, extra: str = "") -> Path:
    """A CSV of ``frame`` and a YAML mapping it (id ``id``, target ``left``, numeric x and y)."""
    csv = tmp_path / "mine.csv"
    frame.to_csv(csv, index=False)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"run: [mine]\ndatasets:\n  mine:\n    source: {csv}\n{extra}"
        "    columns: {id: id, target: left, positive_label: gone, categorical: [plan],"
        " numeric: [x, y]}\n"
    )
    return cfg


def _good_frame(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": range(n),
            "left": ["gone", "stayed"] * (n // 2),
            "plan": ["a", "b", "c", "d"] * (n // 4),
            "x": [float(i) for i in range(n)],
            "y": [i % 7 for i in range(n)],
        }
    )


def _refused(cfg: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run the prepare stage: exit 2, one line on stderr, no prepared output. Returns the line."""
    from level2_churn import stages

    assert main(["stage", "prepare", "--dataset", "mine", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert not (stages.dataset_dir("mine") / "prepared").exists()
    return err


def test_target_with_only_missing_values_is_refused(tmp_path: Path, capsys) -> None:
    frame = _good_frame().assign(left="")
    err = _refused(_table_config(tmp_path, frame), capsys)
    assert "'left': the target is missing in all 40 rows" in err


def test_numeric_column_of_all_missing_is_refused(tmp_path: Path, capsys) -> None:
    frame = _good_frame().assign(y="")
    err = _refused(_table_config(tmp_path, frame), capsys)
    assert "'y': numeric column missing in all 40 rows" in err


def test_duplicated_ids_are_refused(tmp_path: Path, capsys) -> None:
    frame = _good_frame()
    frame.loc[[3, 5], "id"] = 1
    err = _refused(_table_config(tmp_path, frame), capsys)
    assert "'id': 1 ids appear more than once (3 rows" in err


def test_a_csv_above_the_size_limit_is_refused_before_reading(tmp_path: Path, capsys) -> None:
    cfg = _table_config(tmp_path, _good_frame())
    with (tmp_path / "mine.csv").open("r+b") as handle:
        handle.truncate(200 * 10**6)  # 200 MB on disk (sparse): refused by its size alone
    err = _refused(cfg, capsys)
    assert "mine.csv: 200.0 MB, above the 100 MB limit" in err


def test_no_churner_names_the_real_cause(tmp_path: Path, capsys) -> None:
    frame = _good_frame().assign(left="stayed")
    err = _refused(_table_config(tmp_path, frame), capsys)
    assert "holds one value only, 'stayed' (40 rows): no row is a churner ('gone')" in err


def test_missing_markers_are_declared_counted_and_reported_once(tmp_path: Path, capsys) -> None:
    frame = _good_frame().astype({"x": object, "y": object})
    frame.loc[:29, "x"] = "n/a"
    frame.loc[31, "y"] = ""
    # Default: only the empty field means missing; 'n/a' is refused once (not coerce + dtype).
    err = _refused(_table_config(tmp_path, frame), capsys)
    assert err.count("'x'") == 1 and "1 problem(s)" in err and "'n/a'" in err
    assert "missing_values" in err
    # Declared in the config: accepted, and counted in one line per column.
    from level2_churn import stages

    cfg = _table_config(tmp_path, frame, extra="    missing_values: ['', 'n/a']\n")
    assert main(["stage", "prepare", "--dataset", "mine", "--config", str(cfg)]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "values missing" in line]
    assert any("'x': 30 of 40 values missing ('n/a' x30)" in line for line in lines), lines
    assert any("'y': 1 of 40 values missing ('' x1)" in line for line in lines), lines
    assert len(lines) == 2
    assert (stages.dataset_dir("mine") / "prepared" / "table.parquet").is_file()


def test_bench_matrix_is_the_example_yamls_one_case_per_table() -> None:
    from level2_churn.benchmark import matrix_cases
    from level2_churn.settings import DEFAULT_CONFIG, load_config

    cases = matrix_cases(load_config(), DEFAULT_CONFIG)
    assert list(cases) == ["generated", "telco", "mlc_churn", "attrition"]
    for name, params in cases.items():
        own = load_config(params["config"])
        assert own.run == [name] and Path(params["config"]).name == f"{name}.yaml"
        assert own.selection == load_config().selection  # one rule, declared the same everywhere


def test_bench_refuses_an_unknown_table(capsys) -> None:
    assert main(["bench", "--dataset", "nope"]) == 2
    assert "unknown benchmark table(s) ['nope']" in capsys.readouterr().err
