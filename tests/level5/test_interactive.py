"""The interactive terminal session, driven through stdin in a subprocess (slow: small models are
trained once, ~30 s, then each run takes a few seconds).

World seed 3 with 8 genes: the literature and the control replicates give a best-guess F1 of
0.29 (the README's "did not reach" case when the session stops at once).
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.level5.cli_helpers import command, decisions, fresh_outputs, small_env

PROPOSAL = re.compile(r"^--- proposal (\d+): (\w+) (\w+) x\d+", re.MULTILINE)


def run_interactive(answers: str) -> tuple[subprocess.CompletedProcess, list]:
    """One interactive session on world 3 answering ``answers`` then closing stdin."""
    out = fresh_outputs()
    done = subprocess.run(command("run", "--seed", "3", "--interactive"), input=answers,
                          env=small_env(), capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return done, out


def proposal_blocks(stdout: str) -> list[tuple[str, str]]:
    """(gene, text) of every proposal shown at the terminal."""
    starts = list(PROPOSAL.finditer(stdout))
    blocks = []
    for k, match in enumerate(starts):
        end = starts[k + 1].start() if k + 1 < len(starts) else len(stdout)
        blocks.append((match.group(3), stdout[match.start() : end]))
    return blocks


@pytest.mark.slow
def test_end_of_input_at_once_saves_and_says_so() -> None:
    done, out = run_interactive("")
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith("end of input: session stopped after 0 experiment(s)")
    assert str(out) in lines[-1]
    assert "None" not in done.stdout
    assert "experiments: 0; did not reach F1 >= 0.9 within 0 experiments" in done.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["experiments"] == 0 and metrics["experiments_to_target"] is None
    assert (metrics["reviewer"], metrics["stopped_by"]) == ("terminal", "end of input")
    assert "reviewer stopped the session" in (out / "session_story.txt").read_text()
    assert [d["decision"]["action"] for d in decisions(out)] == ["stop"]


@pytest.mark.slow
def test_a_steered_session_then_end_of_input() -> None:
    done, out = run_interactive("a\nr too costly\nr not that one either\na\n")
    blocks = proposal_blocks(done.stdout)
    genes = [gene for gene, _ in blocks]
    assert len(blocks) == 5  # approve, reject, reject, approve, then the one end of input stops
    # A rejected experiment is not proposed again until new data arrive.
    assert len({genes[1], genes[2], genes[3]}) == 3, genes
    # Each proposal shows the literature on its own gene, not one list for every gene.
    shown = []
    for gene, text in blocks:
        hypotheses = re.findall(r"^  \[[^\]]+\] (\w+) (?:activates|inhibits) (\w+)", text, re.M)
        assert all(gene in pair for pair in hypotheses), (gene, hypotheses)
        if hypotheses:
            assert "supports:" in text
        else:
            assert f"literature about {gene}: nothing retrieved" in text
        shown.append(tuple(hypotheses))
    assert len({hypotheses for hypotheses in shown if hypotheses}) >= 2
    # The split score is explained in plain words, once.
    assert done.stdout.count("z3 split score: how many of the still-open questions") == 1
    assert "None" not in done.stdout
    assert done.stdout.strip().splitlines()[-1].startswith(
        "end of input: session stopped after 2 experiment(s)")  # fmt: skip
    actions = [(d["proposed"]["gene"], d["decision"]["action"]) for d in decisions(out)]
    assert [a for _, a in actions] == ["approve", "reject", "reject", "approve", "stop"]
    assert [g for g, _ in actions] == genes
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["experiments"] == 2 and metrics["stopped_by"] == "end of input"
    story = (out / "session_story.txt").read_text()
    assert "reviewer rejected it (too costly); not proposed again until new data arrive" in story
