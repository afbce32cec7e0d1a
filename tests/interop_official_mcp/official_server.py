"""The official x402 paid MCP server (x402.mcp on FastMCP, MCP SDK 1.x), over streamable HTTP.

Runs in the second virtual environment (see requirements.txt), never in ours:

    .venv-official/bin/python official_server.py PORT_FILE

Verifies and settles through the official `HTTPFacilitatorClient` against the
facilitator server at $FACILITATOR_URL (ours, in the tests and the bench: the
official server holds no gas key and never talks to the chain), sending
`Authorization: Bearer $FACILITATOR_TOKEN` when that is set. One paid tool,
`answer`, costs $AMOUNT atomic units of $TOKEN to $PAY_TO on $NETWORK; `ping` is
free. Binds a free loopback port and writes it to PORT_FILE once listening.
"""

from __future__ import annotations

import os
import sys

from loopback import serve_announcing_port
from mcp.server.fastmcp import FastMCP
from x402 import x402ResourceServer
from x402.http import CreateHeadersAuthProvider, FacilitatorConfig, HTTPFacilitatorClient
from x402.mcp import create_payment_wrapper
from x402.mechanisms.evm.exact import ExactEvmServerScheme
from x402.schemas import PaymentRequirements


def _bearer(token: str | None) -> CreateHeadersAuthProvider | None:
    """`Authorization: Bearer $FACILITATOR_TOKEN` on every facilitator request (ours requires it)."""
    if not token:
        return None
    header = {"Authorization": f"Bearer {token}"}
    return CreateHeadersAuthProvider(lambda: {"verify": header, "settle": header, "supported": header})


def build(network: str) -> FastMCP:
    facilitator = HTTPFacilitatorClient(
        FacilitatorConfig(
            url=os.environ["FACILITATOR_URL"], auth_provider=_bearer(os.environ.get("FACILITATOR_TOKEN"))
        )
    )
    resource_server = x402ResourceServer(facilitator)
    resource_server.register(network, ExactEvmServerScheme())
    # Asks the facilitator's /supported: it must be listening before this server starts.
    resource_server.initialize()
    accepts = [
        PaymentRequirements(
            scheme="exact",
            network=network,
            asset=os.environ["TOKEN"],
            amount=os.environ["AMOUNT"],
            pay_to=os.environ["PAY_TO"],
            max_timeout_seconds=300,
            extra={"name": os.environ.get("TOKEN_NAME", "USD Coin"), "version": "2"},
        )
    ]
    server = FastMCP("official-paid", log_level="WARNING")

    @server.tool()
    def ping() -> str:
        return "pong"

    # structured_output=False: FastMCP 1.x would otherwise validate the challenge against
    # the tool's output schema and replace it (official-sdk.md).
    @server.tool(structured_output=False)
    @create_payment_wrapper(resource_server, accepts=accepts)
    async def answer(question: str) -> str:
        return f"official answer to {question}"

    return server


def main() -> None:
    port_file = sys.argv[1]
    server = build(os.environ["NETWORK"])
    serve_announcing_port(server.streamable_http_app(), port_file)


if __name__ == "__main__":
    main()
