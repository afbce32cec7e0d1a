"""Outside agents pay a sample served on a local JSON-RPC chain, as a user would set it up.

Both ways in: `x402-mcp serve <sample> --devnet` (one command: anvil, USDC,
funded test accounts, the sample over streamable HTTP), and a sample started
with the `X402_*` variables pointing at the chain of `x402-mcp devnet`.
The payers are the official x402 client (its exact-EVM signer, its MCP
helpers) and our `PayingClient`; each pays over streamable HTTP with
`_meta["x402/payment"]`, and the payer's balance on anvil drops by the price.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from eth_account import Account
from mcp import Client
from mcp.types import CallToolResult, TextContent

from x402_mcp.client import Budget, PayingClient
from x402_mcp.core.challenge import META_PAYMENT
from x402_mcp.core.money import to_atomic
from x402_mcp.core.networks import Asset

from ..chains import anvil_or_skip
from .processes import running, token_at

SUMMARY_TEXT = "Cats purr. Dogs bark loudly at night. Cats and dogs sleep all day long."
SUMMARY_PRICE = to_atomic("0.014")  # textkit: $0.001 per word (14 words), at least $0.01
FACTORIZE_PRICE = to_atomic("0.02")
_KEY = re.compile(r"0x[0-9a-fA-F]{64}")


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def chain_is_down(rpc_url: str) -> bool:
    try:
        httpx2.post(rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=2)
    except httpx2.ConnectError:
        return True
    return False


async def official_client_pays(url: str, private_key: str, tool: str, arguments: dict[str, Any]) -> Any:
    """The official x402 package's MCP flow, over the MCP SDK 2.x client: read the challenge
    with its extractor, sign with its exact-EVM scheme, attach with its helper, read the receipt."""
    from x402 import x402ClientSync
    from x402.mcp.types import MCPToolResult
    from x402.mcp.utils import (
        attach_payment_to_meta,
        extract_payment_required_from_result,
        extract_payment_response_from_meta,
    )
    from x402.mechanisms.evm import EthAccountSigner
    from x402.mechanisms.evm.exact import ExactEvmClientScheme

    def official(result: CallToolResult) -> MCPToolResult:
        return MCPToolResult(
            content=[block.model_dump(by_alias=True) for block in result.content],
            is_error=bool(result.is_error),
            meta=result.meta or {},
            structured_content=result.structured_content,
        )

    async with Client(url) as client:
        unpaid = await client.call_tool(tool, arguments)
        required = extract_payment_required_from_result(official(unpaid))
        assert required is not None, text_of(unpaid)
        payer = x402ClientSync()
        payer.register("eip155:*", ExactEvmClientScheme(EthAccountSigner(Account.from_key(private_key))))
        payer.set_spend_controls(False)  # a devnet token is in no table of known assets
        payload = payer.create_payment_payload(required)
        meta = attach_payment_to_meta({}, payload)["_meta"]
        assert set(meta) == {META_PAYMENT}
        paid = await client.call_tool(tool, arguments, meta=meta)
        receipt = extract_payment_response_from_meta(official(paid))
    return required, paid, receipt


@pytest.mark.anvil
def test_serve_devnet_prints_what_outsiders_need_and_the_official_client_pays() -> None:
    anvil_or_skip()
    arguments = ["serve", "textkit", "--devnet", "--json", "--port", "0", "--chain-port", "0"]
    with running([*arguments, "--accounts", "2", "--usdc", "5"]) as command:
        info = command.json()
        assert info["server"] == "textkit"
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/mcp", info["mcp_url"])
        assert (info["chain_id"], info["network"]) == (31337, "eip155:31337")
        assert info["token"] == {
            "address": info["usdc"],
            "name": "USD Coin",
            "version": "2",
            "decimals": 6,
            "symbol": "USDC",
        }
        assert "test keys" in info["test_keys_only"]
        # The server's gas key stays in the server: only its address is named, apart from the payers.
        assert set(info["gas_account"]) == {"address"}
        payers = info["accounts"]
        assert len(payers) == 2 and info["gas_account"]["address"] not in {p["address"] for p in payers}
        token = token_at(info)
        for each in payers:
            assert Account.from_key(each["private_key"]).address == each["address"]
            assert token.balance_of(each["address"]) == to_atomic("5") and each["usdc"] == "5"
        payer = payers[0]
        payee_before = token.balance_of(info["pay_to"])

        required, result, receipt = anyio.run(
            official_client_pays, info["mcp_url"], payer["private_key"], "summarize", {"text": SUMMARY_TEXT}
        )

        (offer,) = [each for each in required.accepts if each.network == info["network"]]
        assert (offer.asset, offer.pay_to, offer.amount) == (info["usdc"], info["pay_to"], str(SUMMARY_PRICE))
        assert (offer.extra["name"], offer.extra["version"]) == ("USD Coin", "2")
        assert not result.is_error, text_of(result)
        assert "Cats" in text_of(result)
        assert receipt is not None and receipt.success and receipt.network == info["network"]
        assert receipt.payer == payer["address"] and re.fullmatch(r"0x[0-9a-f]{64}", receipt.transaction)
        assert token.balance_of(payer["address"]) == to_atomic("5") - SUMMARY_PRICE
        assert token.balance_of(info["pay_to"]) == payee_before + SUMMARY_PRICE

        assert command.stop(signal.SIGTERM) == 0
    # Stopping the command stopped anvil; stdout named no key but the test accounts'.
    assert chain_is_down(info["rpc_url"])
    printed_keys = set(_KEY.findall(command.output().split("\n", 1)[0]))
    assert printed_keys == {each["private_key"] for each in payers}


@pytest.mark.anvil
def test_a_sample_on_the_x402_variables_settles_on_the_devnet_chain(tmp_path: Path) -> None:
    anvil_or_skip()
    with running(["devnet", "--json", "--port", "0", "--accounts", "1", "--usdc", "3"]) as devnet:
        chain = devnet.json()
        gas_key = chain["gas_account"]["private_key"]
        assert chain["gas_account"]["address"] != chain["accounts"][0]["address"]
        payee = Account.create().address
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("X402_")},
            **chain["server_env"],
            "X402_SETTLEMENT_KEY": gas_key,
            "X402_PAY_TO": payee,
            "X402_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        }
        assert {"X402_ASSET", "X402_ASSET_NAME", "X402_ASSET_VERSION", "X402_NETWORK"} <= set(env)
        with running(["serve", "mathlab", "--transport", "streamable-http", "--port", "0"], env) as server:
            url = server.wait_for(r"serving MCP on (http://\S+/mcp)").group(1)
            payer = chain["accounts"][0]
            token = token_at(chain)
            budget = Budget(per_call="0.05", file=tmp_path / "budget.sqlite")
            token_info = chain["token"]
            asset = Asset(token_info["address"], name=token_info["name"], version=token_info["version"])

            async def pay() -> Any:
                account = Account.from_key(payer["private_key"])
                async with PayingClient(url, account=account, budget=budget, assets=[asset]) as client:
                    return await client.call_tool("factorize", {"n": 360})

            answer = anyio.run(pay)
            assert not answer.is_error, answer.text
            assert answer.text.split() == ["2", "2", "2", "3", "3", "5"]
            assert answer.receipt is not None and answer.receipt.success
            assert answer.receipt.network == chain["network"]
            assert token.balance_of(payer["address"]) == to_atomic("3") - FACTORIZE_PRICE
            assert token.balance_of(payee) == FACTORIZE_PRICE
            assert server.stop(signal.SIGINT) == 0
        assert gas_key not in server.output()
        assert devnet.stop(signal.SIGTERM) == 0
    assert chain_is_down(chain["rpc_url"])


def test_serve_devnet_refuses_stdio_before_starting_anything() -> None:
    with running(["serve", "textkit", "--devnet", "--transport", "stdio"]) as command:
        assert command.process.wait(timeout=60) == 2  # a usage error
        assert "--devnet serves over streamable HTTP" in command.output()


def test_serve_names_a_bad_x402_variable_without_quoting_the_key() -> None:
    secret = "0x" + "zz" * 32
    env = {
        **os.environ,
        "X402_SETTLEMENT": "local",
        "X402_RPC_URL": "http://127.0.0.1:1",
        "X402_SETTLEMENT_KEY": secret,
        "X402_PAY_TO": "0x000000000000000000000000000000000000dEaD",
        "X402_NETWORK": "eip155:31337",
        "X402_ASSET": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "X402_ASSET_NAME": "USD Coin",
    }
    with running(["serve", "textkit", "--transport", "streamable-http", "--port", "0"], env) as command:
        assert command.process.wait(timeout=60) == 2  # a configuration error
        output = command.output()
    assert "X402_SETTLEMENT_KEY must be a private key" in output
    assert secret not in output and "Traceback" not in output


@pytest.mark.anvil
def test_serve_devnet_for_people_labels_the_test_keys_and_ctrl_c_stops_the_chain() -> None:
    anvil_or_skip()
    arguments = ["serve", "passphrase", "--devnet", "--port", "0", "--chain-port", "0", "--accounts", "1"]
    with running(arguments) as command:
        mcp_url = command.wait_for(r"serving MCP on (\S+) ", stream="stdout").group(1)
        rpc_url = command.wait_for(r"RPC URL +(\S+)", stream="stdout").group(1)
        command.wait_for("Press Ctrl\\+C to stop the server and the chain", stream="stdout")
        assert command.stop(signal.SIGINT) == 0
        output = command.output()
    assert "TEST-ONLY accounts, each funded with 10 ETH and 1000 USDC" in output
    assert "holds its own key, which is never shown" in output
    assert f"x402-mcp call {mcp_url} <tool>" in output
    (printed_key,) = re.findall(r"private key (0x[0-9a-f]{64})", output)
    # Nothing was paid, so no transaction hash either: the one key anywhere in stdout and
    # stderr is the labelled test account's (the server's gas key is never shown).
    assert set(_KEY.findall(output)) == {printed_key}
    assert "stopped the server and the devnet" in output
    assert chain_is_down(rpc_url)


def test_serve_refuses_devnet_options_without_devnet() -> None:
    with running(["serve", "textkit", "--json"]) as command:
        assert command.process.wait(timeout=60) == 2
        assert "--json, --pay-to and --ledger go with --devnet" in command.output()
