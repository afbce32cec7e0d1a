"""A local JSON-RPC chain for people: anvil with our USDC deployed and funded accounts.

`x402-mcp devnet` runs it; a browser wallet, an MCP server and a facilitator can
all point at the printed `rpc_url`. anvil comes from npm (`@foundry-rs/anvil`,
pinned in `tools/`), or from `$X402_ANVIL` / `PATH`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

from .devchain import TokenChain
from .errors import ConfigurationError, X402MCPError

__all__ = ["Devnet", "find_anvil"]

_REPO_ANVIL = (
    Path(__file__).resolve().parents[1]
    / "tools"
    / "node_modules"
    / "@foundry-rs"
    / "anvil-linux-amd64"
    / "bin"
    / "anvil"
)
_LISTENING = re.compile(rb"Listening on 127\.0\.0\.1:(\d+)")
_ETH_PER_ACCOUNT = 10 * 10**18


def find_anvil() -> Path:
    """`$X402_ANVIL`, else the npm-installed binary in `tools/`, else `anvil` on PATH.

    Raises:
        ConfigurationError: saying how to install it.
    """
    configured = os.environ.get("X402_ANVIL")
    for candidate in (Path(configured) if configured else None, _REPO_ANVIL):
        if candidate is not None and candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise ConfigurationError(
        "anvil was not found: run `npm ci` in tools/ (it pins @foundry-rs/anvil), "
        "or set X402_ANVIL to an anvil binary"
    )


@dataclass(frozen=True, slots=True)
class DevnetAccount:
    address: str
    private_key: str


class Devnet:
    """A running anvil with USDC deployed; `stop()` (or leaving the `with` block) ends it.

    Args:
        port: where anvil listens on 127.0.0.1 (0: any free port).
        chain_id: the chain id it reports (31337 is anvil's usual one).
        accounts: how many fresh accounts to fund.
        usdc: dollars of USDC per account (a decimal string).
    """

    def __init__(
        self, *, port: int = 8545, chain_id: int = 31337, accounts: int = 3, usdc: str = "1000"
    ) -> None:
        binary = find_anvil()
        self._log = tempfile.NamedTemporaryFile(prefix="x402-devnet-", suffix=".log", delete=False)  # noqa: SIM115
        command = [str(binary), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(chain_id)]
        self._process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            self.rpc_url = f"http://127.0.0.1:{self._wait_for_port(15.0)}"
            self.chain = TokenChain(
                Web3(Web3.HTTPProvider(self.rpc_url, request_kwargs={"timeout": 10})), label="devnet"
            )
            self.accounts = [self._funded(usdc) for _ in range(accounts)]
        except BaseException:
            self.stop()
            raise

    def _wait_for_port(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        log_path = Path(self._log.name)
        while time.monotonic() < deadline:
            match = _LISTENING.search(log_path.read_bytes())
            if match:
                return int(match.group(1))
            if self._process.poll() is not None:
                raise X402MCPError(f"anvil exited with status {self._process.returncode}; see {log_path}")
            time.sleep(0.01)
        raise X402MCPError(f"anvil did not start within {timeout:g} s; see {log_path}")

    def _funded(self, usdc: str) -> DevnetAccount:
        account = Account.create()
        self.chain.fund_eth(account.address, _ETH_PER_ACCOUNT)  # so a browser wallet can also send
        self.chain.mint(account.address, usdc)
        return DevnetAccount(account.address, account.key.to_0x_hex())

    def describe(self) -> dict[str, Any]:
        """What a wallet, a server and a facilitator need: the JSON `x402-mcp devnet --json` prints."""
        return {
            "rpc_url": self.rpc_url,
            "chain_id": self.chain.network_info.chain_id,
            "network": self.chain.network,
            "usdc": self.chain.usdc,
            "accounts": [{"address": a.address, "private_key": a.private_key} for a in self.accounts],
        }

    def stop(self) -> None:
        """Stop anvil (SIGTERM, then SIGKILL after 5 s) and remove its log."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    def __enter__(self) -> Devnet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
