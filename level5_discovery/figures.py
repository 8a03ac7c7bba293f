"""Pictures drawn from the benchmark and session outputs.

``python -m level5_discovery figures`` draws them into ``artifacts/level5/figures`` (outputs,
never the tracked files); :func:`refresh_readme_figures`, called by the benchmark command,
redraws the README's tracked copies in ``level5_discovery/docs`` from the benchmark's outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ml_common.paths import level_dir  # noqa: E402
from ml_common.plots import save_figure  # noqa: E402

README_FIGURES = Path(__file__).with_name("docs")


def figures_dir() -> Path:
    """Where ``figures`` writes: ``artifacts/level5/figures``."""
    path = level_dir(5) / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def refresh_readme_figures(out_dir: Path = README_FIGURES) -> list[Path]:
    """Redraw the README's PNGs (what ``bench`` calls at its end).

    The session picture is redrawn only from a scripted session (the one ``bench`` times with
    ``run``), never from one a person steered at the terminal or on the review page.
    """
    metrics_path = level_dir(5) / "metrics.json"
    scripted = metrics_path.is_file() and (
        json.loads(metrics_path.read_text()).get("reviewer", "scripted") == "scripted"
    )
    return draw(out_dir, session=scripted)


def draw(out_dir: Path, session: bool = True) -> list[Path]:
    """experiments.png (benchmark) and, with ``session``, session_f1.png (last session) from the
    latest outputs in ``artifacts/level5``; returns the files written."""
    src = level_dir(5)
    written = []
    details_path = src / "bench_details.json"
    if details_path.is_file():
        details = json.loads(details_path.read_text())
        counts = details["experiments_per_world"]
        # The designers at equal information (with the literature) and random order without.
        names = [n for n in ("random", "random_lit", "symbolic_lit", "rl_lit", "agent")
                 if n in counts]  # fmt: skip
        fig, ax = plt.subplots(figsize=(max(5.5, 0.9 * len(names)), 3.2))
        ax.boxplot([counts[n] for n in names], tick_labels=names, showmeans=True)
        ax.tick_params(axis="x", labelsize=7)
        ax.axhline(details["n_genes"] - 1, ls="--", c="grey", lw=1, label="N-1")
        ax.set_ylabel("knock-outs to edge F1 >= 0.9")
        ax.set_title(f"{details['worlds']} held-out worlds, {details['n_genes']} genes")
        ax.legend(loc="lower left")
        written.append(save_figure(fig, out_dir / "experiments.png"))
    metrics_path = src / "metrics.json"
    if session and metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text())
        fig, ax = plt.subplots(figsize=(5.5, 3.0))
        curve = metrics["f1_curve"]
        ax.plot(range(len(curve)), curve, marker="o")
        ax.axhline(0.9, ls="--", c="grey", lw=1)
        ax.set_xlabel("experiments (0 = literature + control replicates)")
        ax.set_ylabel("edge F1 vs hidden truth")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"one session, world seed {metrics['seed']}")
        written.append(save_figure(fig, out_dir / "session_f1.png"))
    return written
