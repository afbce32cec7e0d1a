"""The commands that load an author's server refuse one whose `@paid` tools have no payments
gate (its `build(payments)` forgot `extensions=[payments]` / `payments.install(mcp)`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from x402_mcp import paid
from x402_mcp.errors import ConfigurationError
from x402_mcp.frameworks.coverage import require_gate

FORGETFUL = {
    "mcpserver": """
from mcp.server import MCPServer
from x402_mcp import paid

def build(payments):
    server = MCPServer("forgetful")  # no extensions=[payments]

    @paid(price="0.05")
    @server.tool()
    def report(pages: int) -> str:
        return "ran"

    return server
""",
    "fastmcp": """
from fastmcp import FastMCP
from x402_mcp import paid

def build(payments):
    server = FastMCP("forgetful")  # no payments.install(server)

    @server.tool()
    @paid(price="0.05")
    async def report(pages: int) -> str:
        return "ran"

    return server
""",
}
COMMANDS = {
    "serve": (["serve"], 2),
    "bundle": (["bundle", "--from-index"], 2),
    "claude-config": (["claude-config"], 2),
}


@pytest.mark.parametrize("framework", sorted(FORGETFUL))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_refuses_a_server_whose_paid_tools_have_no_gate(
    command: str, framework: str, tmp_path: Path
) -> None:
    script = tmp_path / "forgetful.py"
    script.write_text(FORGETFUL[framework])
    words, code = COMMANDS[command]
    done = subprocess.run(
        [sys.executable, "-m", "x402_mcp.cli.main", words[0], str(script), *words[1:]],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == code, done.stderr
    assert "paid tool(s) report would have no x402 payments gate" in done.stderr
    assert "MCPServer(..., extensions=[payments])" in done.stderr
    assert "payments.install(server)" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == "" and sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".mcpb") == []


def test_a_server_without_paid_tools_or_with_its_gate_passes() -> None:
    from mcp.server import MCPServer

    free = MCPServer("free")

    @free.tool()
    def ping() -> str:
        return "pong"

    require_gate(free, "free")  # nothing paid, nothing to gate
    paid_one = MCPServer("paid")
    paid_one.tool()(paid(price="0.05")(ping))
    with pytest.raises(ConfigurationError, match="ping"):
        require_gate(paid_one, "paid")
