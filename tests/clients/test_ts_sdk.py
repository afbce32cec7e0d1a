"""The TypeScript SDK's client (under Claude Desktop, Cursor, VS Code) sees the price and pays.

Its `callTool` validates `structuredContent` against the tool's `outputSchema` even on
errors; every sample tool declares one, so this is where a challenge carrying
`structuredContent` used to become `MCP error -32602`. The sample runs on each framework.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from servers import mathlab
from tests.clients.conftest import node_or_skip, node_script, served
from x402_mcp import Payments
from x402_mcp.chains.devchain import TokenChain
from x402_mcp.core.challenge import META_HOSTED_URL, META_PAYMENT_RESPONSE, META_PRICE
from x402_mcp.frameworks.choice import FRAMEWORKS
from x402_mcp.frameworks.detect import sdk_major
from x402_mcp.frameworks.sdk_line import IDENTIFIER

pytestmark = pytest.mark.anyio

PRICE = 20_000  # mathlab's factorize: $0.02


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_ts_sdk_reads_the_price_and_link_then_pays_with_the_official_ts_client(
    chain: TokenChain, tmp_path: Path, framework: str
) -> None:
    node = node_or_skip()
    script = node_script("ts_sdk_pays.mjs", tmp_path)

    def build(payments: Payments) -> Any:
        return mathlab.build(payments, framework)

    async with served(build, chain, tmp_path) as sample:
        before = sample.balances()
        with anyio.fail_after(60):
            done = await anyio.run_process(
                [node, str(script), sample.url, "factorize", json.dumps({"n": 360})],
                env={**os.environ, "PAYER_KEY": sample.payer.key.to_0x_hex()},
                check=False,
            )
        report = json.loads(done.stdout or b"{}")
        assert done.returncode == 0, (done.stderr.decode(), report)

        if sdk_major() >= 2:
            # The handshake-era client sees the payments' extension (the SDK's sieve drops it).
            assert report["capabilities"]["extensions"][IDENTIFIER] == sample.payments.settings()
        else:
            # SDK 1.x has no capabilities.extensions: the price and payee are in the tool's _meta.
            assert IDENTIFIER not in (report["capabilities"].get("extensions") or {})

        listed = report["listed"]
        assert listed["outputSchema"]["required"] == ["result"]  # the schema it validates against
        assert listed["_meta"][META_PRICE]["amount"] == str(PRICE)

        unpaid = report["unpaid"]
        assert unpaid["isError"] is True and "structuredContent" not in unpaid
        required = json.loads(unpaid["content"][0]["text"])
        assert required["accepts"][0]["amount"] == str(PRICE)
        hosted = unpaid["_meta"][META_HOSTED_URL]
        assert hosted.startswith(sample.url.removesuffix("/mcp") + "/pay/pr_")
        assert "$0.02" in unpaid["content"][1]["text"] and hosted in unpaid["content"][1]["text"]
        assert "$0.02" in required["error"] and hosted in required["error"]

        paid = report["paid"]
        assert paid.get("isError") is not True, paid
        assert paid["structuredContent"] == {"result": [2, 2, 2, 3, 3, 5]}  # the tool's own output
        receipt = paid["_meta"][META_PAYMENT_RESPONSE]
        assert receipt["success"] is True and receipt["payer"].lower() == sample.payer.address.lower()
        assert sample.balances() == (before[0] - PRICE, before[1] + PRICE)
