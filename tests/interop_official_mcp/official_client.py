"""The official `x402MCPClient` (x402.mcp, MCP SDK 1.x) paying a tool over streamable HTTP.

Runs in the second virtual environment:

    .venv-official/bin/python official_client.py URL TOOL ARGUMENTS_JSON [CALLS] [WARMUP]

The payer's key comes from $PAYER_KEY. Prints one JSON object: the last
result (`is_error`, `text`, `payment_made`, `payment_response`) and the
duration of every timed call in milliseconds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from types import SimpleNamespace
from typing import Any

import anyio
from eth_account import Account
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from x402 import x402Client
from x402.mcp import x402MCPClient
from x402.mechanisms.evm import EthAccountSigner
from x402.mechanisms.evm.exact import ExactEvmClientScheme


class SessionAdapter:
    """What `x402MCPClient` expects of its MCP client: `call_tool(params)`.

    The result must carry the receipt in an attribute named `_meta`: the official
    converter reads `getattr(result, "_meta")`, which a `CallToolResult` (field
    `meta`) does not have, so the receipt would be lost (official-sdk.md, pitfall 5).
    """

    def __init__(self, session: ClientSession) -> None:
        self._session = session

    async def call_tool(self, params: dict[str, Any], **_options: Any) -> Any:
        result = await self._session.call_tool(
            params["name"], params.get("arguments") or {}, meta=params.get("_meta")
        )
        return SimpleNamespace(
            content=[block.model_dump(by_alias=True, exclude_none=True) for block in result.content],
            isError=result.isError,
            structuredContent=result.structuredContent,
            _meta=result.meta or {},
        )


async def run(url: str, tool: str, arguments: dict[str, Any], calls: int, warmup: int) -> dict[str, Any]:
    payments = x402Client()
    payments.register(
        "eip155:*", ExactEvmClientScheme(EthAccountSigner(Account.from_key(os.environ["PAYER_KEY"])))
    )
    payments.set_spend_controls(False)  # the test token is not in the official table of known assets
    samples: list[float] = []
    async with streamablehttp_client(url) as (read, write, _), ClientSession(read, write) as session:
        await session.initialize()
        client = x402MCPClient(SessionAdapter(session), payments)
        result: Any = None
        for index in range(warmup + calls):
            start = time.perf_counter()
            result = await client.call_tool(tool, arguments)
            if index >= warmup:
                samples.append((time.perf_counter() - start) * 1000)
    response = result.payment_response
    return {
        "is_error": result.is_error,
        "text": "\n".join(
            block.get("text", "") if isinstance(block, dict) else getattr(block, "text", "")
            for block in result.content
        ),
        "payment_made": result.payment_made,
        "payment_response": response.model_dump(by_alias=True, exclude_none=True)
        if hasattr(response, "model_dump")
        else response,
        "samples_ms": samples,
    }


def main() -> None:
    url, tool, arguments = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    calls = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    warmup = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    print(json.dumps(anyio.run(run, url, tool, arguments, calls, warmup)))


if __name__ == "__main__":
    main()
