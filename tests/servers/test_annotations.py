"""The samples' tools carry titles and behaviour hints, and `tools/list` shows them to hosts."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from servers import SAMPLES
from x402_mcp import Payments
from x402_mcp.chains.devchain import DevChain
from x402_mcp.cli.samples import load_sample

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("name", SAMPLES)
async def test_every_tool_is_titled_and_hinted_as_computing_only(
    name: str, devchain: DevChain, tmp_path: Path
) -> None:
    payments = Payments(
        pay_to="0x000000000000000000000000000000000000dEaD",
        network=devchain.network,
        settlement=devchain.settlement(),
        ledger=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
    )
    server = load_sample(name).build(payments)
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
    assert len(tools) >= 2
    for tool in tools:
        assert tool.title, f"{name}.{tool.name} has no title"
        hints = tool.annotations
        assert hints is not None, f"{name}.{tool.name} has no annotations"
        assert hints.title == tool.title
        flags = (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint, hints.open_world_hint)
        assert flags == (True, False, True, False), f"{name}.{tool.name}: {flags}"
    # A paid tool says so in its title too, where a host shows it before the price is quoted.
    titled = {tool.name: tool.title or "" for tool in tools}
    paid = [tool.name for tool in tools if (tool.meta or {}).get("x402-mcp/price")]
    assert paid and all("(paid)" in titled[each] for each in paid)
    assert all("(paid)" not in titled[each] for each in titled if each not in paid)
