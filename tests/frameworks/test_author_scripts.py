"""An author's own server script, on either framework, through `x402-mcp serve` and `bundle`.

The scripts are written as an author writes them (a module-level server with its own
`Payments.from_env()` installed, no `build`), and run as a user runs them: the real CLI in
a subprocess, reached by the MCP SDK's client over stdio and streamable HTTP, paid on anvil
by the official x402 client under `--devnet`. Scripts that do not fit get a clear error.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.types import TextContent

from tests.commands.processes import running, token_at
from tests.commands.test_serve import official_client_pays
from x402_mcp.core.challenge import META_PRICE
from x402_mcp.frameworks.handshake import IDENTIFIER

from ..chains import anvil_or_skip

FASTMCP_SCRIPT = '''"""haikus: an author's FastMCP server."""
from fastmcp import FastMCP
from x402_mcp import Payments, paid

mcp = FastMCP("haikus")

@mcp.tool()
def ping(word: str) -> str:
    """Free."""
    return word

@mcp.tool()
@paid(price="0.03", description="a haiku")
def haiku(topic: str) -> str:
    """A haiku about a topic."""
    return f"{topic} / in five seven five / paid once"

payments = Payments.from_env()
payments.install(mcp)

if __name__ == "__main__":
    mcp.run(show_banner=False)
'''

MCPSERVER_SCRIPT = '''"""haikus: an author's MCPServer."""
from mcp.server import MCPServer
from x402_mcp import Payments, paid

payments = Payments.from_env()
server = MCPServer("haikus", extensions=[payments], log_level="WARNING")

@server.tool()
def ping(word: str) -> str:
    """Free."""
    return word

@server.tool()
@paid(price="0.03", description="a haiku")
def haiku(topic: str) -> str:
    """A haiku about a topic."""
    return f"{topic} / in five seven five / paid once"

if __name__ == "__main__":
    server.run()
'''

SCRIPTS = {"fastmcp": FASTMCP_SCRIPT, "mcpserver": MCPSERVER_SCRIPT}
PRICE = 30_000
CLI = [sys.executable, "-m", "x402_mcp.cli.main"]


def script(tmp_path: Path, framework: str) -> Path:
    path = tmp_path / "haikus.py"
    path.write_text(SCRIPTS[framework])
    return path


def devchain_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("X402_")}
    env |= {"X402_SETTLEMENT": "devchain", "X402_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}"}
    return env | {"X402_PAGE_PORT": "0"}


def cli(*arguments: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *arguments], capture_output=True, text=True, timeout=300, check=False, cwd=cwd, env=env
    )


@pytest.mark.parametrize("framework", ["fastmcp", "mcpserver"])
@pytest.mark.anyio
async def test_serve_runs_an_authors_script_over_stdio(tmp_path: Path, framework: str) -> None:
    path = script(tmp_path, framework)
    params = StdioServerParameters(
        command=CLI[0], args=[*CLI[1:], "serve", str(path)], env=devchain_env(tmp_path)
    )
    with anyio.fail_after(120):
        async with Client(params, mode="legacy") as client:
            assert (client.server_capabilities.extensions or {})[IDENTIFIER]["payTo"].startswith("0x")
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            free = await client.call_tool("ping", {"word": "hi"})
            unpaid = await client.call_tool("haiku", {"topic": "rain"})
    assert (tools["haiku"].meta or {})[META_PRICE]["amount"] == str(PRICE)
    assert META_PRICE not in (tools["ping"].meta or {})
    assert not free.is_error and [b.text for b in free.content if isinstance(b, TextContent)] == ["hi"]
    assert unpaid.is_error and "Payment required: $0.03" in unpaid.content[-1].text  # type: ignore[union-attr]


@pytest.mark.parametrize("framework", ["fastmcp", "mcpserver"])
def test_serve_streamable_http_runs_an_authors_script(tmp_path: Path, framework: str) -> None:
    path = script(tmp_path, framework)
    arguments = ["serve", str(path), "--transport", "streamable-http", "--port", "0"]
    with running(arguments, devchain_env(tmp_path)) as command:
        url = command.wait_for(r"serving MCP on (http://\S+/mcp)").group(1)

        async def listed() -> Any:
            async with Client(url) as client:
                return (await client.list_tools()).tools, await client.call_tool("haiku", {"topic": "sun"})

        tools, unpaid = anyio.run(listed)
        assert command.stop(signal.SIGINT) == 0
    haiku = next(tool for tool in tools if tool.name == "haiku")
    assert (haiku.meta or {})[META_PRICE]["amount"] == str(PRICE)
    assert unpaid.is_error and "/pay/pr_" in json.dumps(unpaid.meta)


@pytest.mark.anvil
@pytest.mark.parametrize("framework", ["fastmcp", "mcpserver"])
def test_serve_devnet_runs_an_authors_script_and_the_official_client_pays(
    tmp_path: Path, framework: str
) -> None:
    anvil_or_skip()
    path = script(tmp_path, framework)
    env = {k: v for k, v in os.environ.items() if not k.startswith("X402_")}
    arguments = ["serve", str(path), "--devnet", "--json", "--port", "0", "--chain-port", "0"]
    with running([*arguments, "--accounts", "1", "--usdc", "2"], env) as command:
        info = command.json()
        assert info["server"] == "haikus"
        payer = info["accounts"][0]
        token = token_at(info)
        required, result, receipt = anyio.run(
            official_client_pays, info["mcp_url"], payer["private_key"], "haiku", {"topic": "snow"}
        )
        (offer,) = required.accepts
        assert (offer.network, offer.pay_to, offer.amount) == (info["network"], info["pay_to"], str(PRICE))
        assert not result.is_error and receipt is not None and receipt.success
        assert token.balance_of(payer["address"]) == 2_000_000 - PRICE
        assert token.balance_of(info["pay_to"]) == PRICE
        assert command.stop(signal.SIGTERM) == 0


@pytest.mark.parametrize("framework", ["fastmcp", "mcpserver"])
def test_bundle_takes_an_authors_script_with_its_framework(tmp_path: Path, framework: str) -> None:
    path = script(tmp_path, framework)
    done = cli("bundle", str(path), "--from-index", "-o", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / "haikus.mcpb") as archive:
        manifest = json.loads(archive.read("manifest.json"))
        project = tomllib.loads(archive.read("pyproject.toml").decode())
        assert archive.read("server/haikus.py").decode() == SCRIPTS[framework]
    tools = {tool["name"]: tool["description"] for tool in manifest["tools"]}
    assert set(tools) == {"ping", "haiku"} and "$0.03 per call" in tools["haiku"]
    assert (
        manifest["description"]
        == f"haikus: an author's {'FastMCP server' if framework == 'fastmcp' else 'MCPServer'}."
    )
    dependencies = project["project"]["dependencies"]
    assert dependencies[0] == "mcp-x402==0.1.0"
    assert any(each.startswith("fastmcp==") for each in dependencies) == (framework == "fastmcp")


BAD_SCRIPTS = {
    "no server": ('"""nothing to serve."""\nVALUE = 1\n', "no server found in"),
    "two servers": (
        "from fastmcp import FastMCP\nfrom mcp.server import MCPServer\n"
        "one = FastMCP('one')\ntwo = MCPServer('two')\n",
        "makes several servers (one, two)",
    ),
    "unsupported": (
        "from mcp.server import Server\nlow = Server('low')\n",
        "low (a mcp.server.lowlevel.server.Server) is not of a supported framework",
    ),
    "build returns nothing": (
        "def build(payments):\n    return None\n",
        "build(payments) returned a builtins.NoneType",
    ),
    "fails on import": ("raise RuntimeError('boom')\n", "failed while loading: RuntimeError: boom"),
}


def test_bundle_refuses_a_script_that_serves_nothing_when_run(tmp_path: Path) -> None:
    path = tmp_path / "haikus.py"
    path.write_text(FASTMCP_SCRIPT.split("if __name__")[0])
    done = cli("bundle", str(path), "--from-index", "-o", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert f"{path} serves nothing when run" in done.stderr and 'if __name__ == "__main__"' in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "haikus.mcpb").exists()


@pytest.mark.parametrize("case", sorted(BAD_SCRIPTS))
@pytest.mark.parametrize("command", ["serve", "bundle"])
def test_a_script_that_does_not_fit_gets_a_clear_error(tmp_path: Path, case: str, command: str) -> None:
    source, message = BAD_SCRIPTS[case]
    path = tmp_path / "bad.py"
    path.write_text(source)
    extra = ["--from-index"] if command == "bundle" else []
    done = cli(command, str(path), *extra, cwd=tmp_path, env=devchain_env(tmp_path))
    assert done.returncode != 0
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "bad.mcpb").exists()
