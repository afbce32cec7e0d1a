"""Each sample server, launched exactly as Claude Desktop would from `x402-mcp claude-config`,
on each framework installed (`--framework mcpserver` or `sdk1`, the SDK line's own and the default,
and `--framework fastmcp`), with that SDK line's client.

The server runs as a subprocess over stdio with its own embedded DevChain; its
payment page comes up on a side port, where the demo wallet pays; the next
call of the paid tool then runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import StdioServerParameters
from mcp_types import CallToolResult, TextContent

from tests.sdk_client import over_stdio
from x402_mcp.cli.claude_config import config_entry
from x402_mcp.core.challenge import META_HOSTED_URL, META_PRICE
from x402_mcp.frameworks.choice import DEFAULT_FRAMEWORK, FRAMEWORKS

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]

# (sample, free tool and arguments, paid tool and arguments, what the paid result contains)
SAMPLES: list[tuple[str, str, dict[str, Any], str, dict[str, Any], str]] = [
    ("textkit", "word_count", {"text": "One two. Three!"}, "summarize",
     {"text": "Cats purr. Dogs bark loudly at night. Cats and dogs sleep.", "sentences": 1}, "Cats"),
    ("mathlab", "is_prime", {"n": 97}, "factorize", {"n": 360}, "2\n2\n2\n3\n3\n5"),
    ("passphrase", "password_strength", {"password": "hunter2"}, "passphrase", {"words": 5}, "-"),
]  # fmt: skip


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def shown_result(result: CallToolResult) -> str:
    """The result's text, with a list result one item a line (MCPServer renders a list so;
    FastMCP renders it as one JSON text, and both carry it in structuredContent)."""
    items = (result.structured_content or {}).get("result")
    return "\n".join(map(str, items)) if isinstance(items, list) else text_of(result)


def launch(name: str, tmp_path: Path, framework: str = DEFAULT_FRAMEWORK) -> StdioServerParameters:
    entry = config_entry(name, ledger=f"sqlite:///{tmp_path / 'ledger.sqlite'}", page_port=0)
    (spec,) = entry["mcpServers"].values()
    # Claude Desktop starts servers with a minimal environment: only what the entry sets.
    args = [*spec["args"], "--framework", framework]
    return StdioServerParameters(command=spec["command"], args=args, env={**spec["env"]})


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(("name", "free", "free_args", "tool", "args", "expected"), SAMPLES)
async def test_sample_over_stdio_is_paid_through_its_page(
    tmp_path: Path,
    framework: str,
    name: str,
    free: str,
    free_args: dict[str, Any],
    tool: str,
    args: dict[str, Any],
    expected: str,
) -> None:
    with anyio.fail_after(60):
        async with over_stdio(launch(name, tmp_path, framework)) as client:
            listed = {t.name: t for t in (await client.list_tools()).tools}
            assert set(listed) >= {free, tool}
            assert (listed[tool].meta or {}).get(META_PRICE) is not None
            assert (listed[free].meta or {}).get(META_PRICE) is None

            free_result = await client.call_tool(free, free_args)
            assert not free_result.is_error, text_of(free_result)

            unpaid = await client.call_tool(tool, args)
            assert unpaid.is_error and "Payment required" in text_of(unpaid)
            hosted = str((unpaid.meta or {})[META_HOSTED_URL])
            assert hosted.startswith("http://127.0.0.1:") and "/pay/pr_" in hosted

            async with httpx2.AsyncClient(timeout=20) as web:
                page = await web.get(hosted, headers={"Accept": "text/html"})
                assert page.status_code == 200 and "Pay with the demo wallet" in page.text
                paid = await web.post(f"{hosted}/demo", json={})
                assert paid.status_code == 200, paid.text

            result = await client.call_tool(tool, args)
            assert not result.is_error, text_of(result)
            assert expected in shown_result(result)
            again = await client.call_tool(tool, args)
            assert again.is_error  # one payment, one run


def test_claude_config_prints_the_exact_entry(tmp_path: Path) -> None:
    payee = "0x000000000000000000000000000000000000dEaD"
    output = subprocess.run(
        [sys.executable, "-m", "x402_mcp.cli.main", "claude-config", "mathlab", "--pay-to", payee,
         "--network", "base-sepolia"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    entry = json.loads(output)["mcpServers"]["mathlab"]
    assert Path(entry["command"]).is_absolute() and os.access(entry["command"], os.X_OK)
    assert entry["args"] == [str(ROOT / "servers" / "mathlab.py")]
    assert entry["env"] == {
        "X402_PAGE_PORT": "8402",
        "X402_SETTLEMENT": "local",
        "X402_NETWORK": "base-sepolia",
        "X402_PAY_TO": payee,
    }


def test_claude_config_names_the_samples_when_one_is_unknown() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "x402_mcp.cli.main", "claude-config", "nope"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "textkit" in done.stderr and "mathlab" in done.stderr and "passphrase" in done.stderr


def test_claude_config_points_a_sample_at_a_devnet_token() -> None:
    token = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    entry = config_entry(
        "textkit", network="eip155:31337", asset=token, asset_name="USD Coin", asset_version="2"
    )
    env = entry["mcpServers"]["textkit"]["env"]
    assert env == {
        "X402_PAGE_PORT": "8402",
        "X402_SETTLEMENT": "local",
        "X402_NETWORK": "eip155:31337",
        "X402_ASSET": token,
        "X402_ASSET_NAME": "USD Coin",
        "X402_ASSET_VERSION": "2",
    }


def test_claude_config_refuses_a_token_without_a_network() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "x402_mcp.cli.main", "claude-config", "textkit", "--asset", "0x" + "ab" * 20],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--asset and its name and version need --network" in done.stderr
    assert "Traceback" not in done.stderr
