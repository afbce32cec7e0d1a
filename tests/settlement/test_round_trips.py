"""What LocalSettlement asks the node, seen on the wire: the receipt in the send's answer
(eth_sendRawTransactionSync) where the node has it, send and polls where it has not,
the nonce resynced after a send refused as stale, and the JSON-RPC calls of a paid call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from mcp import Client
from mcp.server import MCPServer

from x402_mcp import Payments, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.client.payer import payment_meta, read_challenge, sign_payment
from x402_mcp.settlement.checks import NONCE_ALREADY_USED
from x402_mcp.settlement.local import LocalSettlement
from x402_mcp.settlement.relayer import SEND_SYNC

from ..chains import AnvilChain, pay, requirements_for, set_automine
from .conftest import PRICE
from .rpc_proxy import RecordingProxy

pytestmark = pytest.mark.anyio


@pytest.fixture
def proxy(anvil: AnvilChain) -> Iterator[RecordingProxy]:
    with RecordingProxy(anvil.rpc_url) as recording:
        yield recording


def _gas(anvil: AnvilChain) -> LocalAccount:
    gas: LocalAccount = Account.create()
    anvil.fund_eth(gas.address, 10**18)
    return gas


def _backend(anvil: AnvilChain, url: str, gas: LocalAccount, **options: Any) -> LocalSettlement:
    return LocalSettlement.from_rpc(url, gas.key.to_0x_hex(), network=anvil.network_info, **options)


@pytest.mark.anvil
async def test_on_anvil_the_receipt_comes_in_the_answer_to_the_send(
    anvil: AnvilChain, proxy: RecordingProxy
) -> None:
    payee = Account.create().address
    requirements = requirements_for(anvil, payee, amount=str(PRICE))
    backend = _backend(anvil, proxy.url, _gas(anvil))
    payment = pay(anvil.new_account("1"), requirements)

    verified = await backend.verify(payment, requirements)
    settled = await backend.settle(payment, requirements)

    assert verified.is_valid, verified.invalid_message
    assert settled.success, settled.error_message
    assert anvil.balance_of(payee) == PRICE
    seen = proxy.take()
    assert seen.count(SEND_SYNC) == 1
    assert "eth_sendRawTransaction" not in seen
    assert "eth_getTransactionReceipt" not in seen, "the receipt came with the send's answer"
    assert backend._relayer.send_sync is True


@pytest.mark.anvil
async def test_a_node_without_the_sync_send_gets_send_and_polls_and_is_not_asked_again(
    anvil: AnvilChain,
) -> None:
    payee = Account.create().address
    requirements = requirements_for(anvil, payee, amount=str(PRICE))
    with RecordingProxy(anvil.rpc_url, missing={SEND_SYNC}) as lacking:
        backend = _backend(anvil, lacking.url, _gas(anvil), poll_latency=0.005)
        first = await backend.settle(pay(anvil.new_account("1"), requirements), requirements)
        first_calls = lacking.take()
        second = await backend.settle(pay(anvil.new_account("1"), requirements), requirements)
        second_calls = lacking.take()

    assert first.success, first.error_message
    assert second.success, second.error_message
    assert anvil.balance_of(payee) == 2 * PRICE
    assert first_calls.count(SEND_SYNC) == 1
    assert first_calls.count("eth_sendRawTransaction") == 1
    assert "eth_getTransactionReceipt" in first_calls
    assert SEND_SYNC not in second_calls, "a node that lacks the method is remembered as lacking it"
    assert second_calls.count("eth_sendRawTransaction") == 1
    assert backend._relayer.send_sync is False


async def test_the_embedded_chain_settles_by_send_and_receipt_without_asking_for_the_sync_send() -> None:
    chain = DevChain()
    payee = Account.create().address
    requirements = requirements_for(chain, payee, amount=str(PRICE))
    backend = chain.settlement()

    settled = await backend.settle(pay(chain.new_account("1"), requirements), requirements)

    assert settled.success, settled.error_message
    assert chain.balance_of(payee) == PRICE
    assert backend._relayer.send_sync is False


@pytest.mark.anvil
async def test_a_reverted_transaction_in_the_sync_answer_is_refused_with_the_tokens_reason(
    anvil: AnvilChain, proxy: RecordingProxy
) -> None:
    # Two backends share no memory: the second broadcasts the spent authorization,
    # and the receipt in its send's answer says status 0.
    payee = Account.create().address
    requirements = requirements_for(anvil, payee, amount=str(PRICE))
    payment = pay(anvil.new_account("1"), requirements)
    first = await _backend(anvil, anvil.rpc_url, _gas(anvil)).settle(payment, requirements)
    assert first.success, first.error_message
    proxy.take()

    replayed = await _backend(anvil, proxy.url, _gas(anvil)).settle(payment, requirements)

    assert not replayed.success
    assert replayed.error_reason == NONCE_ALREADY_USED
    assert replayed.error_message is not None and "(transaction 0x" in replayed.error_message
    seen = proxy.take()
    assert seen.count(SEND_SYNC) == 1
    assert "eth_getTransactionReceipt" not in seen
    assert seen.count("eth_call") == 1, "the revert is replayed to learn its reason"
    assert anvil.balance_of(payee) == PRICE


@pytest.mark.anvil
async def test_a_nonce_used_behind_the_backends_back_is_read_afresh_and_the_payment_settles(
    anvil: AnvilChain, proxy: RecordingProxy
) -> None:
    payee = Account.create().address
    requirements = requirements_for(anvil, payee, amount=str(PRICE))
    gas = _gas(anvil)
    backend = _backend(anvil, proxy.url, gas)
    first = await backend.settle(pay(anvil.new_account("1"), requirements), requirements)
    assert first.success, first.error_message
    # The gas account sends by other means: the backend's cached nonce is now taken.
    with anvil.lock:
        nonce = anvil.w3.eth.get_transaction_count(gas.address, "pending")
        fees = anvil.w3.eth.get_block("latest")["baseFeePerGas"] * 2 + 10**9
        signed = gas.sign_transaction(
            {
                "type": 2,
                "chainId": anvil.network_info.chain_id,
                "nonce": nonce,
                "to": gas.address,
                "value": 0,
                "gas": 21_000,
                "maxFeePerGas": fees,
                "maxPriorityFeePerGas": 10**9,
            }
        )
        sent = anvil.w3.eth.send_raw_transaction(signed.raw_transaction)
        assert anvil.w3.eth.wait_for_transaction_receipt(sent, poll_latency=0.01)["status"] == 1
    proxy.take()

    second = await backend.settle(pay(anvil.new_account("1"), requirements), requirements)

    assert second.success, second.error_message
    assert anvil.balance_of(payee) == 2 * PRICE
    seen = proxy.take()
    assert seen == [SEND_SYNC, "eth_getTransactionReceipt", "eth_getTransactionCount", SEND_SYNC], (
        "refused as stale, not our own transaction, the nonce re-read, sent again"
    )


@pytest.mark.anvil
async def test_a_send_waiting_for_its_block_holds_up_no_verification(anvil: AnvilChain) -> None:
    payee = Account.create().address
    requirements = requirements_for(anvil, payee, amount=str(PRICE))
    backend = _backend(anvil, anvil.rpc_url, _gas(anvil))
    waiting, other = pay(anvil.new_account("1"), requirements), pay(anvil.new_account("1"), requirements)
    await backend.verify(other, requirements)  # chain id and token code read beforehand
    results: list[bool] = []

    async def settle() -> None:
        results.append((await backend.settle(waiting, requirements)).success)

    set_automine(anvil, False)
    try:
        with anyio.fail_after(8):  # under the request timeout (10 s) the send waits for
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(settle)
                await anyio.sleep(0.2)  # the send is out, waiting for a block that does not come
                verified = await backend.verify(other, requirements)
                assert not results, "the settlement is still waiting for its block"
                set_automine(anvil, True)
    finally:
        set_automine(anvil, True)

    assert verified.is_valid, verified.invalid_message
    assert results == [True]
    assert anvil.balance_of(payee) == PRICE


@pytest.mark.anvil
async def test_a_paid_call_after_warm_up_makes_at_most_three_json_rpc_calls(
    anvil: AnvilChain, proxy: RecordingProxy, tmp_path: Path
) -> None:
    payments = Payments(
        pay_to=Account.create().address,
        network=anvil.network,
        asset=anvil.asset,
        settlement=_backend(anvil, proxy.url, _gas(anvil)),
        ledger=str(tmp_path / "ledger.sqlite"),
    )
    server = MCPServer("counted", extensions=[payments])

    @server.tool()
    @paid(price="0.01")
    def answer(question: str) -> str:
        return f"answer to {question}"

    payer = anvil.new_account("1")
    counts: list[list[str]] = []
    async with Client(server) as client:
        for _ in range(3):
            challenge = await client.call_tool("answer", {"question": "q"})
            payment = sign_payment(payer, read_challenge(challenge))
            proxy.take()
            result = await client.call_tool("answer", {"question": "q"}, meta=payment_meta(payment))
            assert not result.is_error, result.content
            counts.append(proxy.take())

    warm = counts[1:]  # the first call also reads chain id, token code, nonce and fees
    assert all(len(calls) <= 3 for calls in warm), warm
    assert warm == [["eth_call", SEND_SYNC]] * 2
    assert anvil.balance_of(payments.pay_to) == 3 * PRICE
