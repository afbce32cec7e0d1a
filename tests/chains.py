"""Chains under test: the embedded DevChain and anvil, both behind `TokenChain`.

Anvil is the real `anvil` binary from `tools/node_modules` (npm `@foundry-rs/anvil`),
started directly (never through npx, so killing its pid really stops it).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3
from web3.types import RPCEndpoint

from x402_mcp.chains.contracts import place_canonical_contracts
from x402_mcp.chains.devchain import DevChain, SnapshotId, TokenChain
from x402_mcp.core.evm import sign_authorization
from x402_mcp.core.wire import PaymentPayload, PaymentRequirements
from x402_mcp.settlement.local import LocalSettlement

from .npm import INSTALL_HINT, NODE_MODULES, missing

ROOT = Path(__file__).resolve().parents[1]
ANVIL_BINARY = NODE_MODULES / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
ANVIL_CHAIN_ID = 31337
_LISTENING = re.compile(rb"Listening on 127\.0\.0\.1:(\d+)")


def anvil_or_skip() -> Path:
    """The anvil binary, or skip the test (fail instead when X402_REQUIRE_ANVIL=1)."""
    if ANVIL_BINARY.is_file() and os.access(ANVIL_BINARY, os.X_OK):
        return ANVIL_BINARY
    missing(f"anvil is not installed at {ANVIL_BINARY}; {INSTALL_HINT}", required_by="X402_REQUIRE_ANVIL")


class AnvilChain(TokenChain):
    """`TokenChain` on a running anvil, with the batch-settlement contracts and Multicall3 at their
    canonical addresses; `rpc_url` is where it listens."""

    def __init__(self, rpc_url: str) -> None:
        self.rpc_url = rpc_url
        #: The anvil process, when `running_anvil` started it (benchmarks read its CPU time).
        self.process: subprocess.Popen[bytes] | None = None
        super().__init__(Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10})), label="anvil")
        with self.lock:
            place_canonical_contracts(self.w3)

    def revert(self, snapshot_id: SnapshotId) -> None:
        # anvil's evm_revert also rewinds its clock to the snapshot's moment, so a long
        # session would drift behind wall time test after test; put the clock back.
        super().revert(snapshot_id)
        with self.lock:
            self.w3.provider.make_request(RPCEndpoint("evm_setTime"), [int(time.time())])


@contextmanager
def running_anvil(
    binary: Path, log_path: Path, *, startup_timeout: float = 15.0, flags: Sequence[str] = ()
) -> Iterator[AnvilChain]:
    """Start anvil on a free loopback port (with extra command-line `flags`), deploy our USDC
    on it, and stop it afterwards; its output goes to `log_path`."""
    command = [str(binary), "--host", "127.0.0.1", "--port", "0", "--chain-id", str(ANVIL_CHAIN_ID), *flags]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        port = _wait_until_listening(process, log_path, startup_timeout)
        chain = AnvilChain(f"http://127.0.0.1:{port}")
        chain.process = process
        yield chain
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_listening(process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = _LISTENING.search(log_path.read_bytes())
        if match:
            return int(match.group(1))
        if process.poll() is not None:
            raise RuntimeError(f"anvil exited with {process.returncode}; see {log_path}")
        time.sleep(0.005)
    raise RuntimeError(f"anvil did not report 'Listening on' within {timeout} s; see {log_path}")


def requirements_for(
    chain: TokenChain, pay_to: str, *, amount: str = "10000", max_timeout_seconds: int = 300
) -> PaymentRequirements:
    """Exact-scheme requirements for `amount` atomic units of the chain's USDC."""
    return PaymentRequirements(
        scheme="exact",
        network=chain.network,
        amount=amount,
        asset=chain.usdc,
        pay_to=pay_to,
        max_timeout_seconds=max_timeout_seconds,
        extra={"name": chain.asset.name, "version": chain.asset.version},
    )


def pay(
    account: LocalAccount,
    requirements: PaymentRequirements,
    *,
    value: int | None = None,
    valid_after: int | None = None,
    valid_before: int | None = None,
    nonce: str | None = None,
) -> PaymentPayload:
    """A v2 payment for `requirements` signed by `account`, optionally deliberately wrong."""
    exact = sign_authorization(
        account, requirements, value=value, valid_after=valid_after, valid_before=valid_before, nonce=nonce
    )
    return PaymentPayload(accepted=requirements, payload=exact)


def settlement_with_clock(chain: TokenChain, clock: Callable[[], float]) -> LocalSettlement:
    """A second settlement backend on `chain` whose validity checks use `clock`, with its own gas account."""
    gas = Account.create()
    chain.fund_eth(gas.address, 10**18)
    return LocalSettlement(chain.w3, gas, chain.network_info, clock, lock=chain.lock)


# EIP-1271 wallets small enough to write by hand: whatever they are asked,
# `isValidSignature` answers the magic value 0x1626ba7e (accept) or 0xffffffff (refuse).
# PUSH4 answer, PUSH1 0xe0, SHL, PUSH1 0, MSTORE, PUSH1 0x20, PUSH1 0, RETURN
_ANSWER_RUNTIME = "63{answer}60e01b60005260206000f3"
# PUSH1 len, DUP1, PUSH1 11 (this header's length), PUSH1 0, CODECOPY, PUSH1 0, RETURN
_DEPLOY_HEADER = "60{length:02x}80600b6000396000f3"


def deploy_eip1271_wallet(chain: TokenChain, *, accepts: bool) -> str:
    """Deploy a contract wallet that accepts (or refuses) every signature; returns its address."""
    runtime = _ANSWER_RUNTIME.format(answer="1626ba7e" if accepts else "ffffffff")
    initcode = _DEPLOY_HEADER.format(length=len(runtime) // 2) + runtime
    with chain.lock:
        tx_hash = chain.w3.eth.send_transaction(
            {"from": chain.w3.eth.accounts[0], "data": HexStr("0x" + initcode), "gas": 100_000}
        )
        receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)
    address = receipt["contractAddress"]
    assert receipt["status"] == 1
    assert address is not None
    return str(address)


def set_automine(chain: TokenChain, enabled: bool) -> None:
    """Switch instant mining off (transactions wait in the pool) or back on (mining what waits)."""
    with chain.lock:
        if isinstance(chain, DevChain):
            tester = chain.w3.provider.ethereum_tester  # type: ignore[attr-defined]
            if enabled:
                tester.enable_auto_mine_transactions()
            else:
                tester.disable_auto_mine_transactions()
        else:
            chain.w3.provider.make_request(RPCEndpoint("evm_setAutomine"), [enabled])
            if enabled:
                chain.w3.provider.make_request(RPCEndpoint("evm_mine"), [])
