"""What a new user meets first: every level's command line on a bad config or missing input.

Each case runs the real command (``python -m levelN_… …``) in a subprocess, as a user would, and
expects exit 2, one ``error:`` line that names the problem, and no traceback on stderr. Plus the
shared pieces behind that: ``ml_common.cli`` (``--verbose``, the error log, unexpected errors)
and ``ml_common.tool_defaults`` (Prefect's home folders and start-up budget on import).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ml_common import cli
from ml_common.config import ConfigError
from ml_common.paths import PROJECT_ROOT
from ml_common.tool_defaults import PREFECT_STARTUP_BUDGET_S, PREFECT_STARTUP_VARIABLE

PACKAGES = {
    1: "level1_notebooks",
    2: "level2_churn",
    3: "level3_recsys",
    4: "level4_fraud",
    5: "level5_discovery",
}


def run_cli(args: list[str], tmp_path: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    """``python -m <args>`` from the repository root with outputs under ``tmp_path``."""
    env = {**os.environ, "ML_ARTIFACTS_DIR": str(tmp_path / "artifacts")}
    env["PYTHONPATH"] = str(PROJECT_ROOT)  # this checkout's code, whatever the venv points at
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_error_line(result: subprocess.CompletedProcess, *expected: str) -> None:
    """Exit 2; stderr is exactly one ``error:`` line containing every ``expected`` text."""
    stderr = result.stderr.strip()
    assert result.returncode == 2, (result.returncode, stderr[-2000:])
    assert "Traceback" not in stderr, stderr[-2000:]
    assert stderr.startswith("error: ") and "\n" not in stderr, stderr[-2000:]
    for text in expected:
        assert text in stderr, (text, stderr)


def level_config(level: int) -> dict[str, Any]:
    """The level's shipped config.yaml as a mapping."""
    return yaml.safe_load((PROJECT_ROOT / PACKAGES[level] / "config.yaml").read_text())


# (level, dotted section, misspelled key, command line after the package, with CONFIG for the file)
# Level 1's settings have no nested section: its misspelled key is a top-level one.
MISSPELLED = [
    (1, "", "n_fold", ["run", "--config", "CONFIG"]),
    (2, "tune", "n_trails", ["--config", "CONFIG", "run"]),
    (2, "datasets.telco.columns", "categorial", ["--config", "CONFIG", "run"]),
    (3, "train", "bpr_iteration", ["--config", "CONFIG", "train"]),
    (4, "replay", "dayz", ["--config", "CONFIG", "replay"]),
    (5, "lm", "step", ["--config", "CONFIG", "run"]),
]


@pytest.mark.parametrize(
    ("level", "section", "key", "command"),
    MISSPELLED,
    ids=[f"level{m[0]}-{m[1] or 'top'}.{m[2]}" for m in MISSPELLED],
)
def test_a_misspelled_nested_key_stops_the_cli_with_its_path(
    tmp_path, level, section, key, command
):
    config = level_config(level)
    node = config
    for part in filter(None, section.split(".")):
        node = node.setdefault(part, {})
    node[key] = 1
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    args = [str(path) if a == "CONFIG" else a for a in command]
    full_key = f"{section}.{key}" if section else key
    result = run_cli([PACKAGES[level], *args], tmp_path)
    assert_one_error_line(result, full_key, "unknown setting", str(path))
    # Nothing was produced from a config that was refused.
    assert not (tmp_path / "artifacts" / f"level{level}" / "metrics.json").exists()


def test_level2_missing_data_file_is_one_line_without_prefect_s_traceback(tmp_path):
    """The flow fails inside a Prefect task: Prefect's own ERROR log must not reach the user."""
    config = level_config(2)
    missing = tmp_path / "no-such-churn.csv"
    config["datasets"]["telco"]["source"] = str(missing)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_cli(["level2_churn", "--config", str(path), "run", "--dataset", "telco"], tmp_path)
    assert_one_error_line(result, str(missing), "not found")
    log = tmp_path / "artifacts" / "level2" / "logs" / "error.log"
    assert "DataError" in log.read_text()  # the traceback is kept, in the log


MISSING_INPUT = [
    (1, lambda tmp: ["run", "--data", str(tmp / "titanic.csv")], "titanic.csv"),
    (3, lambda tmp: ["train", "--data", str(tmp / "prepared")], "prepared"),
    (4, lambda tmp: ["--config", str(tmp / "fraud.yaml"), "replay"], "fraud.yaml"),
    (5, lambda tmp: ["--config", str(tmp / "world.yaml"), "run"], "world.yaml"),
]


@pytest.mark.parametrize(
    ("level", "make_args", "named"), MISSING_INPUT, ids=[f"level{m[0]}" for m in MISSING_INPUT]
)
def test_a_missing_input_is_one_error_line(tmp_path, level, make_args, named):
    result = run_cli([PACKAGES[level], *make_args(tmp_path)], tmp_path)
    assert_one_error_line(result, named)


def test_verbose_adds_the_traceback_on_stderr(tmp_path):
    args = ["level1_notebooks", "run", "--data", str(tmp_path / "titanic.csv"), "--verbose"]
    result = run_cli(args, tmp_path)
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "DataError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


def _crash(argv: list[str]) -> int:
    raise ZeroDivisionError("division by zero")


def test_an_unexpected_error_is_one_line_with_the_log_path(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ML_ARTIFACTS_DIR", str(tmp_path))
    monkeypatch.delenv("ML_VERBOSE", raising=False)
    assert cli.run_main(_crash, level=9, argv=[]) == 1
    err = capsys.readouterr().err.strip()
    log = tmp_path / "level9" / "logs" / "error.log"
    assert err == (
        "error: unexpected ZeroDivisionError (a bug or a failed tool, not your input): "
        f"division by zero (traceback in {log}; or rerun with --verbose)"
    )
    assert "ZeroDivisionError" in log.read_text() and "Traceback" in log.read_text()


def test_user_errors_exit_2_and_verbose_is_taken_out_of_argv(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ML_ARTIFACTS_DIR", str(tmp_path))
    monkeypatch.delenv("ML_VERBOSE", raising=False)
    seen: list[list[str]] = []

    def main(argv: list[str]) -> int:
        seen.append(argv)
        raise ConfigError("x.yaml: tune.n_trails: unknown setting")

    assert cli.run_main(main, level=9, argv=["run", "--verbose"]) == 2
    assert seen == [["run"]]
    err = capsys.readouterr().err
    assert "Traceback" in err  # --verbose
    assert err.strip().splitlines()[-1] == "error: x.yaml: tune.n_trails: unknown setting"


def test_prefect_start_up_timeout_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ML_ARTIFACTS_DIR", str(tmp_path))
    monkeypatch.delenv("ML_VERBOSE", raising=False)

    def main(argv: list[str]) -> int:
        raise RuntimeError(
            "Timed out while attempting to connect to ephemeral Prefect API server. stdout: …"
        )

    assert cli.run_main(main, level=9, argv=[]) == 1
    err = capsys.readouterr().err.strip()
    budget = os.environ.get(PREFECT_STARTUP_VARIABLE, str(PREFECT_STARTUP_BUDGET_S))
    assert err.startswith(f"error: Prefect's temporary API server did not answer within {budget} s")
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in err and "\n" not in err


def test_importing_ml_common_prepares_prefect_s_home_and_start_up_budget(tmp_path):
    home = tmp_path / "a" / "b" / "prefect"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PYTHONPATH=str(PROJECT_ROOT))
    variable = PREFECT_STARTUP_VARIABLE
    code = f"import os, ml_common; print(os.environ['{variable}'])"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert home.is_dir()  # Prefect creates only the last folder itself
    assert int(out.stdout) == PREFECT_STARTUP_BUDGET_S >= 120  # Prefect's own 20 s failed
    # One value: a level module imported first (level 4's retrain flow set its own) keeps it.
    first = f"import os, level4_fraud.lifecycle.retrain; print(os.environ['{variable}'])"
    out = subprocess.run(
        [sys.executable, "-c", first], env=env, capture_output=True, text=True, check=True
    )
    assert int(out.stdout) == PREFECT_STARTUP_BUDGET_S
    env[variable] = "33"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "33"  # what the user exported wins


def test_pytest_timeout_is_configured_and_fails_a_hung_test(tmp_path):
    """A hung server must fail its test, not block CI: the plugin is active with a finite limit."""
    import tomllib

    options = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    assert 0 < int(options["ini_options"]["timeout"]) <= 3600
    hung = tmp_path / "test_hung.py"
    hung.write_text("import time\n\ndef test_hangs():\n    time.sleep(600)\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(hung), "-o", "timeout=2", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "-q"],
        capture_output=True, text=True, timeout=300,  # startup alone: 30 s at load 8
    )  # fmt: skip
    assert result.returncode == 1, result.stdout[-2000:]
    assert "Timeout" in result.stdout


def test_ci_scripts_parse_and_list_main_outputs_for_every_level():
    """.ci/run checks each `make levelN` against .ci/main-outputs.txt: every level must be there."""
    scripts = [
        PROJECT_ROOT / ".ci" / "run",
        *sorted((PROJECT_ROOT / ".ci" / "setup.d").glob("*.sh")),
    ]
    for script in scripts:
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, (script, result.stderr)
    lines = (PROJECT_ROOT / ".ci" / "main-outputs.txt").read_text().splitlines()
    listed = [line.split() for line in lines if line.strip() and not line.startswith("#")]
    assert all(len(parts) == 2 and parts[1].startswith("artifacts/") for parts in listed), listed
    assert {parts[0] for parts in listed} == {f"level{n}" for n in PACKAGES}
