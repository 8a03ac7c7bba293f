"""Refresh the results table in the top-level README from ``artifacts/bench/level*.json``.

Run by ``make bench`` after the benchmarks; the table sits between two HTML comment markers so
the rest of the README is never touched. ``python -m ml_common.report --check`` prints it only.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from ml_common.atomic import write_text
from ml_common.paths import PROJECT_ROOT, bench_dir

START, END = "<!-- results:start -->", "<!-- results:end -->"
LEVEL_NAMES = {
    1: "Titanic notebook",
    2: "Churn pipeline",
    3: "Recommender service",
    4: "Fraud system",
    5: "Discovery agent",
}


def _fmt(value: Any) -> str:
    if value is None:  # a figure the run could not measure; its `<key>_not_measured` row says why
        return "not measured"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def render_table(folder: Path) -> str:
    """Markdown rows for every benchmark file found in ``folder``.

    A level without a file gets a row that says so, so an old figure never stands in for it.
    """
    paths = {level: folder / f"level{level}.json" for level in LEVEL_NAMES}
    lines = ["| level | measure | value |", "|---|---|---|"]
    if not any(path.is_file() for path in paths.values()):
        lines.append("| – | no benchmark has been run yet (`make bench`) | – |")
        return "\n".join(lines)
    for level, name in LEVEL_NAMES.items():
        if not paths[level].is_file():
            missing = f"| {level} · {name} | not measured in this run | `make bench-level{level}` |"
            lines.append(missing)
            continue
        results = json.loads(paths[level].read_text())
        machine = results.pop("machine", {}) or {}
        seconds = results.pop("seconds", None)
        for key, value in results.items():
            if isinstance(value, dict):
                continue  # an object a level adds for tools (level 5's ablation) has flat twins
            lines.append(f"| {level} · {name} | `{key}` | {_fmt(value)} |")
        where = f"{machine.get('cores')} cores, GPU: {machine.get('gpu') or 'none'}"
        lines.append(f"| {level} · {name} | benchmark wall time | {_fmt(seconds)} s ({where}) |")
    return "\n".join(lines)


def replace_section(path: Path, name: str, text: str) -> bool:
    """Replace what stands between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path``.

    Returns whether the file changed; raises ``ValueError`` if the markers are missing. Every
    generated table in a README (this results table, level 3's offline and load-test tables) is
    written this way, so the hand-written text around it is never touched.
    """
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    old = path.read_text()
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(old):
        raise ValueError(f"{path}: markers {start} … {end} not found")
    new = pattern.sub(lambda _: f"{start}\n{text.rstrip(chr(10))}\n{end}", old)
    if new != old:
        write_text(path, new)
    return new != old


def update_readme(readme: Path, table: str) -> bool:
    """Replace the results table; returns whether the README changed."""
    try:
        return replace_section(readme, "results", table)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="print the table, change nothing")
    args = parser.parse_args()
    table = render_table(bench_dir())
    if args.check:
        print(table)
        return
    changed = update_readme(PROJECT_ROOT / "README.md", table)
    print(table)
    print("README.md results table " + ("updated" if changed else "already up to date"))


if __name__ == "__main__":
    main()
