"""`x402-mcp devnet` and `x402-mcp facilitator` as a user runs them: real processes, real anvil."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time

import httpx2
import pytest
from eth_account import Account
from web3 import Web3

from x402_mcp.contracts.token import UsdcToken

from ..chains import AnvilChain, anvil_or_skip
from ..facilitator.serving import loopback_socket

CLI = [sys.executable, "-m", "x402_mcp.cli"]


@pytest.mark.anvil
def test_devnet_prints_what_a_wallet_needs_and_stops_anvil_on_sigterm() -> None:
    anvil_or_skip()
    process = subprocess.Popen(
        [*CLI, "devnet", "--json", "--port", "0", "--accounts", "2", "--usdc", "25"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert set(info) == {"rpc_url", "chain_id", "network", "usdc", "accounts"}
        assert info["chain_id"] == 31337
        assert info["network"] == "eip155:31337"
        w3 = Web3(Web3.HTTPProvider(info["rpc_url"]))
        assert w3.eth.chain_id == 31337
        token = UsdcToken(
            w3, info["usdc"], owner=info["accounts"][0]["address"], name="USD Coin", version="2"
        )
        assert len(info["accounts"]) == 2
        for account in info["accounts"]:
            assert token.balance_of(account["address"]) == 25_000_000
            assert w3.eth.get_balance(account["address"]) > 0
            assert w3.eth.account.from_key(account["private_key"]).address == account["address"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with pytest.raises(httpx2.ConnectError):
        httpx2.post(info["rpc_url"], json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=2)


@pytest.mark.anvil
def test_facilitator_command_serves_supported_for_its_network(anvil: AnvilChain) -> None:
    gas = anvil.new_account("0")
    anvil.fund_eth(gas.address, 10**18)
    sock = loopback_socket()
    port = sock.getsockname()[1]
    sock.close()
    token = secrets.token_hex(32)
    env = {
        **os.environ,
        "X402_FACILITATOR_KEY": gas.key.to_0x_hex(),
        "X402_FACILITATOR_TOKEN": token,
        "X402_FACILITATOR_PAY_TO": Account.create().address,
    }
    bearer = {"Authorization": f"Bearer {token}"}
    process = subprocess.Popen(
        [*CLI, "facilitator", "--rpc-url", anvil.rpc_url, "--network", anvil.network, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                supported = httpx2.get(f"http://127.0.0.1:{port}/supported", headers=bearer, timeout=2).json()
                break
            except httpx2.ConnectError:
                assert time.monotonic() < deadline, "the facilitator did not start"
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                time.sleep(0.05)
        assert {"x402Version": 2, "scheme": "exact", "network": anvil.network} in supported["kinds"]
        assert supported["signers"] == {"eip155:*": [gas.address]}
        anonymous = httpx2.get(f"http://127.0.0.1:{port}/supported", timeout=2)
        assert anonymous.status_code == 401 and "Bearer" in anonymous.json()["error"]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    printed = process.stderr.read() if process.stderr else ""
    assert "bearer token required" in printed
    assert gas.key.to_0x_hex() not in printed and token not in printed


def test_facilitator_command_needs_its_key_from_the_environment() -> None:
    env = {k: v for k, v in os.environ.items() if k != "X402_FACILITATOR_KEY"}
    done = subprocess.run(
        [*CLI, "facilitator", "--rpc-url", "http://127.0.0.1:1", "--network", "base"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "X402_FACILITATOR_KEY" in done.stderr
