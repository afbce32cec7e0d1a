"""A local JSON-RPC chain for people: anvil with our USDC deployed and funded accounts, and the
batch-settlement contracts and Multicall3 at their canonical addresses.

`x402-mcp devnet` runs it; a browser wallet, an MCP server and a facilitator can
all point at the printed `rpc_url`; `x402-mcp serve <sample> --devnet` runs one
and serves a sample settling on it. anvil comes from npm (`@foundry-rs/anvil`,
pinned in `tools/`), or from `$X402_ANVIL` / `PATH`.

Every key made here is a test key of a throwaway chain: printing the payers'
keys (labelled so) is the point of a devnet. The gas account is kept apart
from them, so that a server's gas key is never handed out as a payer's.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

from ..core.networks import Asset
from ..errors import ConfigurationError, X402MCPError
from .contracts import CANONICAL_CONTRACTS, place_canonical_contracts
from .devchain import TokenChain

__all__ = ["TEST_KEYS_NOTICE", "Devnet", "DevnetAccount", "find_anvil"]

TEST_KEYS_NOTICE = "test keys of a throwaway local chain: never send real funds to them or use them elsewhere"

_REPO_ANVIL = (
    Path(__file__).resolve().parents[2]
    / "tools"
    / "node_modules"
    / "@foundry-rs"
    / "anvil-linux-amd64"
    / "bin"
    / "anvil"
)
_LISTENING = re.compile(rb"Listening on 127\.0\.0\.1:(\d+)")
_ETH_PER_ACCOUNT = 10 * 10**18
_PR_SET_PDEATHSIG = 1
_START_TIMEOUT_SECONDS = 30.0  # generous: a loaded CI machine, not anvil, is slow


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
    """A funded test account of the devnet (its key is worthless anywhere else)."""

    address: str
    private_key: str


def _prepare_anvil() -> Callable[[], None]:
    """What runs in anvil's process between fork and exec.

    Only system calls run there: anything that takes a lock (such as loading a
    library) could deadlock in a child forked from a threaded process, so `prctl`
    is looked up here, in the parent.
    """
    prctl = _linux_prctl()

    def prepare() -> None:
        # A child inherits its parent's blocked signals across exec (a caller may block
        # SIGINT and SIGTERM to sigwait for them), and anvil must still obey them.
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        if prctl is not None:
            # anvil gets SIGTERM when the thread that started it ends, even by SIGKILL
            # of the whole process, so no chain outlives its command.
            prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return prepare


def _linux_prctl() -> Callable[[int, int], int] | None:
    # The kernel ties the death signal to the starting *thread*: only the main thread
    # lives as long as the process (a pool's worker thread may end any time).
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        function: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return function


_TAIL_LINES = 15


def _tail(log: Path) -> str:
    """The last lines of anvil's log, safe to print (the log is deleted right after)."""
    from ..core.text import shown

    lines = log.read_bytes().decode("utf-8", "replace").strip().splitlines()[-_TAIL_LINES:]
    return "\n".join(f"  {shown(line, 300)}" for line in lines) or "  (nothing)"


def _require_free_port(port: int) -> None:
    """Refuse a taken port before anvil starts, with what to do (anvil itself only exits)."""
    if port == 0:
        return
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As anvil binds: a port only in TIME_WAIT from an earlier run is free to it.
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("127.0.0.1", port))
    except OSError as exc:
        raise ConfigurationError(
            f"port {port} on 127.0.0.1 is not free ({exc.strerror}): another devnet or anvil may be "
            "running; stop it, or choose another port (0: any free port)"
        ) from None
    finally:
        probe.close()


class Devnet:
    """A running anvil with USDC deployed; `stop()` (or leaving the `with` block) ends it.

    Args:
        port: where anvil listens on 127.0.0.1 (0: any free port).
        chain_id: the chain id it reports (31337 is anvil's usual one).
        accounts: how many fresh payer accounts to fund (ETH and USDC).
        usdc: dollars of USDC per account (a decimal string).

    `gas_account` is one more account, funded with ETH only, for the server or
    facilitator that settles on this chain.
    """

    def __init__(
        self, *, port: int = 8545, chain_id: int = 31337, accounts: int = 3, usdc: str = "1000"
    ) -> None:
        binary = find_anvil()
        _require_free_port(port)
        self._log = tempfile.NamedTemporaryFile(prefix="x402-devnet-", suffix=".log", delete=False)  # noqa: SIM115
        command = [str(binary), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(chain_id)]
        self._process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_prepare_anvil(),
        )
        self.usdc_per_account = usdc
        try:
            self.rpc_url = f"http://127.0.0.1:{self._wait_for_port(_START_TIMEOUT_SECONDS)}"
            gas = Account.create()
            self.chain = TokenChain(
                Web3(Web3.HTTPProvider(self.rpc_url, request_kwargs={"timeout": 10})),
                label="devnet",
                gas_account=gas,
            )
            with self.chain.lock:
                place_canonical_contracts(self.chain.w3)
            self.chain.fund_eth(gas.address, _ETH_PER_ACCOUNT)
            self.gas_account = DevnetAccount(gas.address, gas.key.to_0x_hex())
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
                raise X402MCPError(
                    f"anvil exited with status {self._process.returncode}; it said:\n{_tail(log_path)}"
                )
            time.sleep(0.01)
        # The log is removed when this start-up fails: quote it rather than point at it.
        raise X402MCPError(f"anvil did not start within {timeout:g} s; it said:\n{_tail(log_path)}")

    def _funded(self, usdc: str) -> DevnetAccount:
        account = Account.create()
        self.chain.fund_eth(account.address, _ETH_PER_ACCOUNT)  # so a browser wallet can also send
        self.chain.mint(account.address, usdc)
        return DevnetAccount(account.address, account.key.to_0x_hex())

    @property
    def pid(self) -> int:
        """anvil's process id."""
        return self._process.pid

    @property
    def asset(self) -> Asset:
        """Our USDC on this chain, with its EIP-712 domain."""
        return self.chain.asset

    def server_env(self) -> dict[str, str]:
        """The `X402_*` variables of a server settling here, all but `X402_SETTLEMENT_KEY` and
        `X402_PAY_TO` (the gas account's key, and a payee of your choice)."""
        asset = self.asset
        return {
            "X402_SETTLEMENT": "local",
            "X402_RPC_URL": self.rpc_url,
            "X402_NETWORK": self.chain.network,
            "X402_ASSET": asset.address,
            "X402_ASSET_NAME": asset.name,
            "X402_ASSET_VERSION": asset.version,
            "X402_ASSET_DECIMALS": str(asset.decimals),
        }

    def describe(self) -> dict[str, Any]:
        """The chain, the token, the batch-settlement contracts and the funded payer accounts:
        what a wallet or an agent needs.

        It leaves out the gas account; `x402-mcp devnet --json` adds it, `serve --devnet`
        (whose server holds that key) names only its address.
        """
        asset = self.asset
        return {
            "rpc_url": self.rpc_url,
            "chain_id": self.chain.network_info.chain_id,
            "network": self.chain.network,
            "usdc": asset.address,
            "token": {
                "address": asset.address,
                "name": asset.name,
                "version": asset.version,
                "decimals": asset.decimals,
                "symbol": asset.symbol,
            },
            "accounts": [
                {"address": a.address, "private_key": a.private_key, "usdc": self.usdc_per_account}
                for a in self.accounts
            ],
            "contracts": {name: address for address, name in CANONICAL_CONTRACTS.items()},
            "test_keys_only": TEST_KEYS_NOTICE,
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
