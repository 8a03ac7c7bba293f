"""Pictures for the README, drawn from the benchmark and session outputs."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ml_common.paths import level_dir  # noqa: E402
from ml_common.plots import save_figure  # noqa: E402


def draw(out_dir: Path) -> list[Path]:
    """experiments.png (benchmark) and session_f1.png (last session); returns the files."""
    src = level_dir(5)
    written = []
    details_path = src / "bench_details.json"
    if details_path.is_file():
        details = json.loads(details_path.read_text())
        counts = details["experiments_per_world"]
        names = ["random", "random_lit", "symbolic_lit", "rl_lit", "agent"]
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        ax.boxplot([counts[n] for n in names], tick_labels=names, showmeans=True)
        ax.tick_params(axis="x", labelsize=7)
        ax.axhline(details["n_genes"] - 1, ls="--", c="grey", lw=1, label="N-1")
        ax.set_ylabel("knock-outs to edge F1 >= 0.9")
        ax.set_title(f"{details['worlds']} held-out worlds, {details['n_genes']} genes")
        ax.legend(loc="lower left")
        written.append(save_figure(fig, out_dir / "experiments.png"))
    metrics_path = src / "metrics.json"
    if metrics_path.is_file():
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
