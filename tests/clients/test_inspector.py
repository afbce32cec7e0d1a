"""The MCP Inspector CLI calls each sample's paid tool over stdio and shows the price and link.

It is the TypeScript SDK's client underneath: before the fix it printed only
`data must have required property 'result'` (the challenge failing the tool's outputSchema).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest

from tests.clients.conftest import INSPECTOR, node_or_skip
from x402_mcp.cli.claude_config import config_entry
from x402_mcp.core.challenge import META_HOSTED_URL
from x402_mcp.frameworks.choice import FRAMEWORK_OPTION, FRAMEWORKS

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(
    ("sample", "tool", "arguments", "price"),
    [
        ("mathlab", "factorize", ["n=360"], "$0.02"),
        ("textkit", "summarize", ["text=Cats purr. Dogs bark.", "sentences=1"], "$0.01"),
        ("passphrase", "passphrase", ["words=5"], "$0.01"),
    ],
)
async def test_inspector_cli_shows_the_link_not_a_schema_error(
    tmp_path: Path, sample: str, tool: str, arguments: list[str], price: str, framework: str
) -> None:
    node_or_skip()
    entry = config_entry(sample, ledger=f"sqlite:///{tmp_path / 'ledger.sqlite'}", page_port=0)
    (spec,) = entry["mcpServers"].values()
    environment = [flag for name, value in spec["env"].items() for flag in ("-e", f"{name}={value}")]
    command = [
        str(INSPECTOR),
        "--cli",
        spec["command"],
        *spec["args"],
        FRAMEWORK_OPTION,
        framework,
        *environment,
    ]
    command += ["--method", "tools/call", "--tool-name", tool, "--tool-arg", *arguments]
    with anyio.fail_after(90):
        # The catalog it may write goes to the test's directory, not the home directory.
        catalog = {**os.environ, "MCP_CATALOG_PATH": str(tmp_path / "catalog.json")}
        done = await anyio.run_process(command, check=False, cwd=tmp_path, env=catalog)
    output = done.stdout.decode()

    assert "must have required property" not in output + done.stderr.decode()
    assert output.strip(), (
        f"the Inspector printed no result (exit {done.returncode}): {done.stderr.decode()[-3000:]}"
    )
    result = json.loads(output)
    assert result["isError"] is True and "structuredContent" not in result
    hosted = result["_meta"][META_HOSTED_URL]
    assert hosted.startswith("http://127.0.0.1:") and "/pay/pr_" in hosted
    human = result["content"][1]["text"]
    assert f"Payment required: {price}" in human and f"Pay here: {hosted}" in human
    assert json.loads(result["content"][0]["text"]) == result["_meta"]["x402/error"]
