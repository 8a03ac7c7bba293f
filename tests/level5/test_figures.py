"""`figures` draws into artifacts/level5/figures; only `bench` redraws the README's PNGs."""

from __future__ import annotations

import json

from level5_discovery.__main__ import main
from level5_discovery.figures import README_FIGURES, figures_dir, refresh_readme_figures
from ml_common.paths import level_dir


def write_outputs(reviewer: str) -> None:
    out = level_dir(5)
    designers = ("random", "random_lit", "symbolic_lit", "rl_lit", "agent")
    counts = {name: [5 - k, 7 - k, 6 - k] for k, name in enumerate(designers)}
    details = {"experiments_per_world": counts, "n_genes": 12, "worlds": 3}
    (out / "bench_details.json").write_text(json.dumps(details))
    metrics = {"seed": 7, "reviewer": reviewer, "f1_curve": [0.5, 0.8, 0.95]}
    (out / "metrics.json").write_text(json.dumps(metrics))


def test_figures_command_writes_artifacts_not_the_tracked_pngs(capsys) -> None:  # noqa: ANN001
    write_outputs("scripted")
    tracked = {p: p.stat().st_mtime_ns for p in README_FIGURES.glob("*.png")}
    assert main(["figures"]) == 0
    written = sorted(p.name for p in figures_dir().glob("*.png"))
    assert written == ["experiments.png", "session_f1.png"]
    assert str(figures_dir()) in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in README_FIGURES.glob("*.png")} == tracked


def test_readme_refresh_skips_a_session_a_person_steered(tmp_path) -> None:  # noqa: ANN001
    write_outputs("terminal")
    assert [p.name for p in refresh_readme_figures(tmp_path)] == ["experiments.png"]
    write_outputs("scripted")
    names = sorted(p.name for p in refresh_readme_figures(tmp_path))
    assert names == ["experiments.png", "session_f1.png"]
