"""The official stack's server side for bench_server.py, run in `.venv-official` (MCP SDK 1.x).

    .venv-official/bin/python bench/_official_server_side.py

Builds, per name in $SERVERS (comma separated), a FastMCP server whose paid tool
`answer` is wrapped by x402's `create_payment_wrapper` and verified and settled by
an in-process official facilitator (`x402Facilitator` with `FacilitatorWeb3Signer`
on $RPC_<NAME>, paying gas with $GAS_KEY_<NAME>), reached through the in-memory
transport of MCP 1.x. It then reads one JSON command a line on stdin and answers
one JSON line on stdout:

    {"op": "run", "server": NAME, "calls": N}  ->  {"samples_ms": [...]}
    {"op": "quit"}

Each call first asks for the challenge and signs it with the official async
`x402Client` (untimed), then times the paid `tools/call` with the signed payload
until its result. A call that does not come back settled ends the script with
a message on stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import AsyncExitStack
from types import SimpleNamespace
from typing import Any

import anyio
import anyio.to_thread
from eth_account import Account
from mcp import ClientSession
from mcp.server.fastmcp import FastMCP
from mcp.shared.memory import create_connected_server_and_client_session
from x402 import x402Client, x402Facilitator, x402ResourceServer
from x402.mcp import create_payment_wrapper
from x402.mcp.utils import convert_mcp_result, extract_payment_required_from_result
from x402.mechanisms.evm import EthAccountSigner, FacilitatorWeb3Signer
from x402.mechanisms.evm.exact import (
    ExactEvmClientScheme,
    ExactEvmServerScheme,
    register_exact_evm_facilitator,
)
from x402.schemas import PaymentRequirements

ARGUMENTS = {"question": "bench"}


def build(network: str, rpc_url: str, gas_key: str) -> FastMCP:
    facilitator = register_exact_evm_facilitator(
        x402Facilitator(), FacilitatorWeb3Signer(gas_key, rpc_url), networks=network
    )
    resource_server = x402ResourceServer(facilitator)
    resource_server.register(network, ExactEvmServerScheme())
    resource_server.initialize()
    accepts = [
        PaymentRequirements(
            scheme="exact",
            network=network,
            asset=os.environ["TOKEN"],
            amount=os.environ["AMOUNT"],
            pay_to=os.environ["PAY_TO"],
            max_timeout_seconds=300,
            extra={"name": os.environ["TOKEN_NAME"], "version": os.environ["TOKEN_VERSION"]},
        )
    ]
    server = FastMCP("official-bench", log_level="WARNING")

    # structured_output=False, as in the interop server (official-sdk.md).
    @server.tool(structured_output=False)
    @create_payment_wrapper(resource_server, accepts=accepts)
    async def answer(question: str) -> str:
        return f"answer to {question}"

    return server


async def paid_call(session: ClientSession, payer: x402Client) -> float:
    challenge = await session.call_tool("answer", ARGUMENTS)
    required = extract_payment_required_from_result(
        convert_mcp_result(
            SimpleNamespace(
                content=[block.model_dump(by_alias=True, exclude_none=True) for block in challenge.content],
                isError=challenge.isError,
                structuredContent=challenge.structuredContent,
                _meta=challenge.meta or {},
            )
        )
    )
    if required is None:
        raise SystemExit(f"no payment challenge: {challenge}")
    payload = await payer.create_payment_payload(required)
    meta = {"x402/payment": payload.model_dump(by_alias=True, exclude_none=True)}
    start = time.perf_counter()
    result = await session.call_tool("answer", ARGUMENTS, meta=meta)
    elapsed = (time.perf_counter() - start) * 1000
    receipt = (result.meta or {}).get("x402/payment-response")
    if result.isError or not isinstance(receipt, dict) or not receipt.get("success"):
        raise SystemExit(f"an official paid call was not settled: {result}")
    return elapsed


async def main() -> None:
    network = os.environ["NETWORK"]
    payer = x402Client()
    payer.register(
        "eip155:*", ExactEvmClientScheme(EthAccountSigner(Account.from_key(os.environ["PAYER_KEY"])))
    )
    payer.set_spend_controls(False)  # the bench token is not in the official table of known assets
    sessions: dict[str, ClientSession] = {}
    async with AsyncExitStack() as stack:
        for name in os.environ["SERVERS"].split(","):
            server = build(network, os.environ[f"RPC_{name.upper()}"], os.environ[f"GAS_KEY_{name.upper()}"])
            sessions[name] = await stack.enter_async_context(
                create_connected_server_and_client_session(server._mcp_server)
            )
        print(json.dumps({"ready": sorted(sessions)}), flush=True)
        while True:
            line = await anyio.to_thread.run_sync(sys.stdin.readline)
            if not line:
                return
            command: dict[str, Any] = json.loads(line)
            if command["op"] == "quit":
                return
            session = sessions[command["server"]]
            samples = [await paid_call(session, payer) for _ in range(int(command["calls"]))]
            print(json.dumps({"samples_ms": samples}), flush=True)


if __name__ == "__main__":
    anyio.run(main)
