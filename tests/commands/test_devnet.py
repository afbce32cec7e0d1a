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

from x402_mcp.chains.contracts import CANONICAL_CONTRACTS, missing_canonical_contracts
from x402_mcp.chains.token import UsdcToken

from ..chains import AnvilChain, anvil_or_skip
from ..facilitator.serving import loopback_socket
from .processes import running

CLI = [sys.executable, "-m", "x402_mcp.cli.main"]


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
        assert set(info) == {
            "rpc_url", "chain_id", "network", "usdc", "token", "contracts", "accounts", "test_keys_only",
            "gas_account", "server_env",
        }  # fmt: skip
        assert info["chain_id"] == 31337
        assert info["network"] == "eip155:31337"
        assert info["token"] == {
            "address": info["usdc"], "name": "USD Coin", "version": "2", "decimals": 6, "symbol": "USDC",
        }  # fmt: skip
        w3 = Web3(Web3.HTTPProvider(info["rpc_url"]))
        assert w3.eth.chain_id == 31337
        # The batch-settlement contracts and Multicall3 are in place at their canonical addresses.
        assert info["contracts"] == {name: address for address, name in CANONICAL_CONTRACTS.items()}
        assert missing_canonical_contracts(w3) == []
        token = UsdcToken(
            w3, info["usdc"], owner=info["accounts"][0]["address"], name="USD Coin", version="2"
        )
        assert len(info["accounts"]) == 2
        for account in info["accounts"]:
            assert token.balance_of(account["address"]) == 25_000_000
            assert w3.eth.get_balance(account["address"]) > 0
            assert w3.eth.account.from_key(account["private_key"]).address == account["address"]
        # The gas account is apart from the payers: ETH to settle with, no USDC.
        gas = info["gas_account"]
        assert gas["address"] not in {a["address"] for a in info["accounts"]}
        assert w3.eth.account.from_key(gas["private_key"]).address == gas["address"]
        assert w3.eth.get_balance(gas["address"]) > 0 and token.balance_of(gas["address"]) == 0
        assert info["server_env"] == {
            "X402_SETTLEMENT": "local",
            "X402_RPC_URL": info["rpc_url"],
            "X402_NETWORK": "eip155:31337",
            "X402_ASSET": info["usdc"],
            "X402_ASSET_NAME": "USD Coin",
            "X402_ASSET_VERSION": "2",
            "X402_ASSET_DECIMALS": "6",
        }
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
    serves = ["--asset", anvil.usdc]  # the devnet's token: its chain has no known USDC
    process = subprocess.Popen(
        [
            *CLI,
            "facilitator",
            "--rpc-url",
            anvil.rpc_url,
            "--network",
            anvil.network,
            *serves,
            "--port",
            str(port),
        ],
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


@pytest.mark.anvil
def test_devnet_labels_its_keys_as_test_keys_for_people() -> None:
    anvil_or_skip()
    with running(["devnet", "--port", "0", "--accounts", "1"]) as command:
        command.wait_for("Press Ctrl\\+C to stop", stream="stdout")
        assert command.stop(signal.SIGINT) == 0
        output = command.output()
    assert "TEST-ONLY accounts, each funded with 10 ETH and 1000 USDC" in output
    assert "TEST-ONLY gas account for a server or facilitator" in output
    assert "X402_ASSET_NAME=USD Coin" not in output  # values with spaces are quoted for the shell
    assert "X402_ASSET_NAME='USD Coin'" in output
    assert "devnet stopped" in output


@pytest.mark.anvil
def test_anvil_dies_with_the_devnet_command_even_when_it_is_killed() -> None:
    anvil_or_skip()
    with running(["devnet", "--json", "--port", "0", "--accounts", "0"]) as command:
        rpc_url = command.json()["rpc_url"]
        command.process.kill()  # SIGKILL: no clean-up runs in the command itself
        command.process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while True:
        try:
            httpx2.post(rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=1)
        except httpx2.ConnectError:
            break
        assert time.monotonic() < deadline, "anvil outlived the killed command"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--usdc", "0.0000001"], "argument --usdc: expected dollars such as 1000 or 2.5 (up to 6 decimals)"),
        (["--usdc", "-5"], "argument --usdc: expected dollars"),
        (["--chain-id", "0"], "argument --chain-id: expected a whole number from 1 to"),
        (["--accounts", "101"], "argument --accounts: expected a whole number from 0 to 100"),
        (["--port", "65536"], "argument --port: expected a whole number from 0 to 65535"),
    ],
)
def test_devnet_refuses_bad_options_before_starting_anvil(option: list[str], message: str) -> None:
    done = subprocess.run([*CLI, "devnet", *option], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr
