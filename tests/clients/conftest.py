"""The real MCP clients people use, against sample servers served the way hosts reach them.

Node-based clients (the TypeScript SDK, the Inspector CLI) come from tools/node_modules;
they skip when absent, and fail instead when X402_REQUIRE_ANVIL=1 (CI, where .ci/run
installs them).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.asgi import serving
from tests.npm import INSTALL_HINT, NODE_MODULES, missing
from x402_mcp import Payments
from x402_mcp.chains.devchain import TokenChain
from x402_mcp.frameworks.detect import framework_of
from x402_mcp.ledger.sqlite import SQLiteLedger

ROOT = Path(__file__).resolve().parents[2]
INSPECTOR = NODE_MODULES / ".bin" / "mcp-inspector"
HERE = Path(__file__).resolve().parent


def node_or_skip() -> str:
    """The node binary, once tools/ is installed; skip (or fail under X402_REQUIRE_ANVIL=1)."""
    node = shutil.which("node")
    if node is not None and (NODE_MODULES / "@modelcontextprotocol" / "sdk").is_dir() and INSPECTOR.exists():
        return node
    reason = f"node or the TypeScript MCP SDK and the Inspector in {NODE_MODULES} are missing; {INSTALL_HINT}"
    missing(reason, required_by="X402_REQUIRE_ANVIL")


def node_script(name: str, workdir: Path) -> Path:
    """A copy of tests/clients/`name` beside a link to tools/node_modules, so its imports resolve."""
    link = workdir / "node_modules"
    if not link.exists():
        link.symlink_to(NODE_MODULES, target_is_directory=True)
    copy = workdir / name
    shutil.copyfile(HERE / name, copy)
    return copy


@dataclass
class Served:
    """A sample server over streamable HTTP (its payment page beside `/mcp`), and who pays it."""

    url: str
    chain: TokenChain
    payments: Payments
    server: Any
    payer: LocalAccount
    payee: str

    def balances(self) -> tuple[int, int]:
        return self.chain.balance_of(self.payer.address), self.chain.balance_of(self.payee)


def http_app(server: Any, **http: Any) -> Any:
    """`server`'s streamable-HTTP app (MCP at `/mcp`, the page beside it), on any framework."""
    framework = framework_of(server)
    if framework == "mcpserver":
        return server.streamable_http_app(**http)
    if framework == "sdk1":  # SDK 1.x takes its HTTP settings at construction
        assert not http, f"SDK 1.x FastMCP takes {sorted(http)} as FastMCP(...) arguments"
        return server.streamable_http_app()
    return server.http_app(**http)


def sample_payments(chain: TokenChain, ledger: Path) -> tuple[Payments, str]:
    payee = Account.create().address
    payments = Payments(
        pay_to=payee, network=chain.network, settlement=chain.settlement(), ledger=SQLiteLedger(ledger)
    )
    return payments, payee


@contextlib.asynccontextmanager
async def served(
    build: Callable[[Payments], Any], chain: TokenChain, tmp_path: Path, **http: Any
) -> AsyncIterator[Served]:
    """Serve the sample `build` makes (links follow the address it is reached at)."""
    payments, payee = sample_payments(chain, tmp_path / "ledger.sqlite")
    server = build(payments)
    app = http_app(server, **http)
    async with serving(app) as base:
        yield Served(f"{base}/mcp", chain, payments, server, chain.new_account(usdc="1"), payee)
