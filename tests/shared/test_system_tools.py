"""A missing system tool: one line naming what to install; a skip, or a failure when required."""

from __future__ import annotations

import pytest

from ml_common import system_tools
from ml_common.system_tools import ToolMissing, missing_tool, require_tool, tool_required
from tests.conftest import require_system_tool


@pytest.fixture
def absent_tool(monkeypatch: pytest.MonkeyPatch) -> str:
    tools = {**system_tools.TOOLS, "promtool": (("promtool-absent-here",), "Debian package x")}
    monkeypatch.setattr(system_tools, "TOOLS", tools)
    return "promtool"


def test_a_missing_tool_names_its_package(absent_tool: str) -> None:
    assert missing_tool(absent_tool) == "promtool-absent-here not found (install: Debian package x)"
    with pytest.raises(ToolMissing, match="Debian package x") as caught:
        require_tool(absent_tool)
    assert caught.value.tool == "promtool" and isinstance(caught.value, RuntimeError)


def test_a_present_tool_gives_its_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(system_tools, "TOOLS", {**system_tools.TOOLS, "sh": (("sh",), "dash")})
    assert missing_tool("sh") is None
    assert require_tool("sh").endswith("/sh")


def test_the_switch_requires_what_ci_installs_and_a_list_names_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REQUIRE_SYSTEM_TOOLS", raising=False)
    assert not tool_required("promtool")
    monkeypatch.setenv("REQUIRE_SYSTEM_TOOLS", "1")
    assert all(tool_required(t) for t in ("promtool", "redis-server", "chromium", "docker"))
    assert not tool_required("gpu")  # CI machines have none
    monkeypatch.setenv("REQUIRE_SYSTEM_TOOLS", "gpu, docker")
    assert tool_required("gpu") and tool_required("docker") and not tool_required("promtool")


def test_tests_skip_without_the_switch_and_fail_with_it(
    absent_tool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUIRE_SYSTEM_TOOLS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="install: Debian package x"):
        require_system_tool(absent_tool)
    monkeypatch.setenv("REQUIRE_SYSTEM_TOOLS", "1")
    with pytest.raises(pytest.fail.Exception, match="REQUIRE_SYSTEM_TOOLS requires promtool"):
        require_system_tool(absent_tool)
