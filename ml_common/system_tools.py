"""System tools some steps need, and what to install when one is missing.

A newcomer's machine has Python and ``make``; CI's also has Debian's ``prometheus`` (promtool),
``redis-server``, ``chromium`` + ``chromium-driver``, a Docker engine, sometimes a GPU. A step that
needs one asks :func:`require_tool`, which raises :class:`ToolMissing` with one line naming the
Debian package. Tests turn that into a skip (a failure when ``REQUIRE_SYSTEM_TOOLS=1``, which CI
sets: tests/conftest.py); benchmarks record the figure as not measured, with the line as the
reason (``ml_common.bench``).
"""

from __future__ import annotations

import functools
import os
import shutil

#: tool -> (the executables it needs, what to install). Docker and the GPU are checked by asking
#: the engine / PyTorch, not by a path.
TOOLS: dict[str, tuple[tuple[str, ...], str]] = {
    "promtool": (("promtool",), "Debian package prometheus"),
    "prometheus": (("prometheus",), "Debian package prometheus"),
    "redis-server": (("redis-server",), "Debian package redis-server"),
    "chromium": (
        ("/usr/bin/chromium", "/usr/bin/chromedriver"),
        "Debian packages chromium and chromium-driver",
    ),
    "docker": (("docker",), "Debian package docker.io, with dockerd running"),
    "gpu": ((), "a CUDA GPU with its driver"),
}

#: ``1`` (CI sets it): a missing tool that CI installs fails the test that needs it instead of
#: skipping it; a comma-separated list (``gpu`` on a GPU machine) requires exactly those.
REQUIRE_VARIABLE = "REQUIRE_SYSTEM_TOOLS"
#: What ``REQUIRE_SYSTEM_TOOLS=1`` requires: everything CI installs (.ci/setup.d), not the GPU.
CI_INSTALLS = ("promtool", "prometheus", "redis-server", "chromium", "docker")


class ToolMissing(RuntimeError):
    """A system tool this step needs is absent; the message is one line naming what to install."""

    def __init__(self, tool: str, reason: str) -> None:
        super().__init__(reason)
        self.tool = tool
        self.reason = reason


def tool_required(tool: str) -> bool:
    """Whether a missing ``tool`` must fail rather than skip (see :data:`REQUIRE_VARIABLE`)."""
    value = os.environ.get(REQUIRE_VARIABLE, "").strip()
    if value == "1":
        return tool in CI_INSTALLS
    return tool in {name.strip() for name in value.split(",")}


@functools.cache
def _docker_answers() -> bool:
    from ml_common.services import docker_available

    return docker_available(timeout_s=20)


@functools.cache
def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def missing_tool(tool: str) -> str | None:
    """``None`` when ``tool`` is usable here, else one line saying what is missing and what to
    install (e.g. "promtool not found (install: Debian package prometheus)")."""
    if tool not in TOOLS:
        raise KeyError(f"unknown system tool {tool!r}; known: {', '.join(TOOLS)}")
    executables, install = TOOLS[tool]
    absent = [name for name in executables if shutil.which(name) is None]
    if absent:
        return f"{', '.join(absent)} not found (install: {install})"
    if tool == "docker" and not _docker_answers():
        return f"no Docker engine answers (docker info fails; install: {install})"
    if tool == "gpu" and not _cuda_available():
        return f"no CUDA GPU (torch.cuda.is_available() is False; needs {install})"
    return None


def require_tool(tool: str) -> str | None:
    """The path of ``tool``'s first executable (``None`` for docker/gpu checks without one);
    raises :class:`ToolMissing` when it is absent."""
    reason = missing_tool(tool)
    if reason is not None:
        raise ToolMissing(tool, reason)
    executables = TOOLS[tool][0]
    return shutil.which(executables[0]) if executables else None
