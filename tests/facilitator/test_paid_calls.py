"""Paid MCP tool calls settled through a facilitator: ours (each chain) and the official one (anvil).

Every failure path must leave the tool unrun and the money where it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from mcp import Client
from mcp.server import MCPServer

from x402_mcp import ConfigurationError, Payments, paid
from x402_mcp.chains.devchain import TokenChain
from x402_mcp.client.payer import payment_meta, read_challenge, sign_payment
from x402_mcp.core.challenge import META_PAYMENT, META_PAYMENT_RESPONSE, META_REQUEST_ID
from x402_mcp.core.states import State
from x402_mcp.facilitator import facilitator_app
from x402_mcp.ledger.sqlite import SQLiteLedger
from x402_mcp.settlement import DEFAULT_FACILITATOR_URL, FacilitatorSettlement

from ..chains import AnvilChain
from .serving import TOKEN, Interposer, LyingFacilitator, loopback_socket, serving

pytestmark = pytest.mark.anyio

PRICE = 50_000


@dataclass
class Counter:
    runs: int = 0
    texts: list[str] = field(default_factory=list)


def paid_server(
    chain: TokenChain, settlement: FacilitatorSettlement, ledger: Path, *, settle: str = "before"
) -> tuple[MCPServer[Any], Payments, Counter]:
    payments = Payments(
        pay_to=Account.create().address,
        network=chain.network,
        asset=chain.asset,  # any EVM chain: its CAIP-2 id plus the token
        settlement=settlement,
        ledger=SQLiteLedger(ledger),
    )
    server = MCPServer("facilitated", extensions=[payments])
    counter = Counter()

    @server.tool()
    @paid(price="0.05", settle=settle)
    def answer(question: str) -> str:
        counter.runs += 1
        return f"answer to {question}"

    return server, payments, counter


async def _pay_and_call(client: Client, payer: LocalAccount) -> tuple[Any, str]:
    challenge = await client.call_tool("answer", {"question": "q"})
    assert challenge.is_error
    request_id = (challenge.meta or {})[META_REQUEST_ID]
    payment = sign_payment(payer, read_challenge(challenge))
    return await client.call_tool("answer", {"question": "q"}, meta=payment_meta(payment)), request_id


async def test_a_paid_call_settles_through_our_facilitator(
    chain: TokenChain, our_facilitator: str, tmp_path: Path
) -> None:
    remote = FacilitatorSettlement(our_facilitator, network=chain.network, token=TOKEN)
    server, payments, counter = paid_server(chain, remote, tmp_path / "l.sqlite")
    payer = chain.new_account("10")
    async with Client(server) as client:
        result, _ = await _pay_and_call(client, payer)
    await remote.aclose()
    assert not result.is_error
    assert counter.runs == 1
    assert (result.meta or {})[META_PAYMENT_RESPONSE]["success"] is True
    assert chain.balance_of(payments.pay_to) == PRICE


async def test_a_facilitator_that_is_down_runs_nothing_and_moves_nothing(
    chain: TokenChain, tmp_path: Path
) -> None:
    closed = loopback_socket()
    remote = FacilitatorSettlement(
        f"http://127.0.0.1:{closed.getsockname()[1]}", network=chain.network, verify_attempts=1
    )
    server, payments, counter = paid_server(chain, remote, tmp_path / "l.sqlite")
    payer = chain.new_account("10")
    async with Client(server) as client:
        result, request_id = await _pay_and_call(client, payer)
    closed.close()
    assert result.is_error
    assert "settlement backend failed" in result.content[0].text  # type: ignore[union-attr]
    assert counter.runs == 0
    assert chain.balance_of(payments.pay_to) == 0
    request = await payments.ledger.get(request_id)
    assert request is not None and request.state is State.ISSUED, "verify failed: still payable"


async def test_a_settle_that_fails_runs_nothing_and_moves_nothing(chain: TokenChain, tmp_path: Path) -> None:
    payer = chain.new_account("10")
    chain.fund_eth(payer.address, 10**17)
    elsewhere = Account.create().address

    def drain_payer_before_settling(path: str) -> None:
        # Between verify and settle the payer spends everything: the transfer must revert.
        if path != "/settle":
            return
        with chain.lock:
            token = chain.token.contract
            tx = token.functions.transfer(elsewhere, chain.token.balance_of(payer.address)).build_transaction(
                {
                    "from": payer.address,
                    "gas": 100_000,
                    "nonce": chain.w3.eth.get_transaction_count(payer.address),
                }
            )
            sent = chain.w3.eth.send_raw_transaction(payer.sign_transaction(tx).raw_transaction)
            assert chain.w3.eth.wait_for_transaction_receipt(sent, poll_latency=0.01)["status"] == 1

    app = Interposer(facilitator_app(chain.settlement()), on_request=drain_payer_before_settling)
    gas_nonce = chain.w3.eth.get_transaction_count(chain.settlement().signer)
    async with serving(app) as url:
        remote = FacilitatorSettlement(url, network=chain.network)
        server, payments, counter = paid_server(chain, remote, tmp_path / "l.sqlite")
        async with Client(server) as client:
            result, request_id = await _pay_and_call(client, payer)
        await remote.aclose()
    assert result.is_error
    assert counter.runs == 0
    assert chain.balance_of(payments.pay_to) == 0
    # /settle verified again what it was asked to settle, and refused it before spending gas.
    assert "holds 0 atomic units" in json_error(result)
    assert chain.w3.eth.get_transaction_count(chain.settlement().signer) == gas_nonce
    request = await payments.ledger.get(request_id)
    assert request is not None and request.state is State.ISSUED


def json_error(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content).lower()


async def test_an_invalid_payment_is_refused_before_the_facilitator_moves_anything(
    chain: TokenChain, our_facilitator: str, tmp_path: Path
) -> None:
    remote = FacilitatorSettlement(our_facilitator, network=chain.network, token=TOKEN)
    server, payments, counter = paid_server(chain, remote, tmp_path / "l.sqlite")
    broke = chain.new_account("0.01")  # less than the $0.05 price
    async with Client(server) as client:
        result, _ = await _pay_and_call(client, broke)
    await remote.aclose()
    assert result.is_error
    assert "holds 10000 atomic units of the token" in json_error(result)
    assert counter.runs == 0
    assert chain.balance_of(payments.pay_to) == 0


@pytest.mark.anvil
@pytest.mark.parametrize("settle", ["before", "after"])
async def test_a_facilitator_that_claims_a_made_up_settlement_is_never_paid_for(
    anvil: AnvilChain, tmp_path: Path, settle: str
) -> None:
    liar = LyingFacilitator(facilitator_app(anvil.settlement(), token=TOKEN), lambda: "0x" + "ab" * 32)
    async with serving(liar) as url:
        remote = FacilitatorSettlement(
            url, network=anvil.network, token=TOKEN, rpc_url=anvil.rpc_url, reconcile_seconds=0.3
        )
        server, payments, counter = paid_server(anvil, remote, tmp_path / "l.sqlite", settle=settle)
        payer = anvil.new_account("10")
        async with Client(server) as client:
            result, request_id = await _pay_and_call(client, payer)
        await remote.aclose()
    assert liar.settles == 1
    assert result.is_error
    assert "answer to" not in json_error(result), "no output for a payment the chain does not show"
    assert counter.runs == (0 if settle == "before" else 1)
    assert anvil.balance_of(payments.pay_to) == 0
    request = await payments.ledger.get(request_id)
    # Kept settling: reconciliation reads the chain, never the facilitator's word, to finish it.
    assert request is not None and request.state is State.SETTLING, "a lie is never recorded as paid"


@pytest.mark.anvil
async def test_official_client_payloads_settle_through_the_official_facilitator_on_anvil(
    anvil: AnvilChain, official_facilitator: str, tmp_path: Path
) -> None:
    from x402 import parse_payment_required, x402ClientSync
    from x402.mechanisms.evm import EthAccountSigner
    from x402.mechanisms.evm.exact import ExactEvmClientScheme

    remote = FacilitatorSettlement(official_facilitator, network=anvil.network)
    server, payments, counter = paid_server(anvil, remote, tmp_path / "l.sqlite")
    payer = anvil.new_account("10")
    official = x402ClientSync()
    official.register("eip155:*", ExactEvmClientScheme(EthAccountSigner(payer)))
    official.set_spend_controls(False)
    async with Client(server) as client:
        challenge = await client.call_tool("answer", {"question": "q"})
        payload = official.create_payment_payload(parse_payment_required(read_challenge(challenge).dump()))
        result = await client.call_tool(
            "answer",
            {"question": "q"},
            meta={META_PAYMENT: payload.model_dump(by_alias=True, exclude_none=True)},
        )
    await remote.aclose()
    assert not result.is_error, json_error(result)
    assert counter.runs == 1
    assert anvil.balance_of(payments.pay_to) == PRICE
    assert anvil.balance_of(payer.address) == 10_000_000 - PRICE


def test_base_sepolia_defaults_to_the_public_facilitator_without_calling_it(tmp_path: Path) -> None:
    payments = Payments(
        pay_to=Account.create().address, network="base-sepolia", ledger=f"sqlite:///{tmp_path / 'l.sqlite'}"
    )
    assert isinstance(payments.settlement, FacilitatorSettlement)
    assert payments.settlement.url == DEFAULT_FACILITATOR_URL
    assert payments.asset.address == "0x036CbD53842c5426634e7929541eC2318f3dCF7e"


@pytest.mark.parametrize("network", ["base", "eip155:31337"])
def test_other_networks_need_an_explicit_settlement_choice(network: str, tmp_path: Path) -> None:
    with pytest.raises(
        ConfigurationError, match=r"cdp_facilitator\(\).*FacilitatorSettlement\(url\).*LocalSettlement"
    ):
        Payments(
            pay_to=Account.create().address, network=network, ledger=f"sqlite:///{tmp_path / 'l.sqlite'}"
        )
