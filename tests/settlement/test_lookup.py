"""`lookup_authorization` on each chain under test: what the chain says about one authorization."""

from __future__ import annotations

import pytest
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

from x402_mcp.chains.devchain import TokenChain
from x402_mcp.core.evm import AUTHORIZATION_TYPES
from x402_mcp.core.networks import BASE
from x402_mcp.core.wire import AnyPaymentPayload, PaymentRequirements
from x402_mcp.errors import SettlementError
from x402_mcp.settlement.base import OnChain
from x402_mcp.settlement.lookup import lookup_authorization
from x402_mcp.settlement.relayer import ChainReader

from ..chains import pay
from .conftest import PRICE

pytestmark = pytest.mark.anyio

CANCEL_VRS = "cancelAuthorization(address,bytes32,uint8,bytes32,bytes32)"


def _lookup(
    chain: TokenChain, payment: AnyPaymentPayload, requirements: PaymentRequirements, lookback: int = 1000
) -> OnChain:
    # A reader holds no account: it only reads.
    reader = ChainReader(chain.w3, chain.network_info)
    with chain.lock:
        return lookup_authorization(reader, payment, requirements, lookback_blocks=lookback)


def _cancel(chain: TokenChain, payer: LocalAccount, nonce: str) -> None:
    """The payer cancels the authorization with `nonce` (anyone may send the cancellation)."""
    message = {
        "types": {
            "EIP712Domain": AUTHORIZATION_TYPES["EIP712Domain"],
            "CancelAuthorization": [
                {"name": "authorizer", "type": "address"},
                {"name": "nonce", "type": "bytes32"},
            ],
        },
        "primaryType": "CancelAuthorization",
        "domain": {
            "name": chain.asset.name,
            "version": chain.asset.version,
            "chainId": chain.network_info.chain_id,
            "verifyingContract": chain.usdc,
        },
        "message": {"authorizer": payer.address, "nonce": bytes.fromhex(nonce[2:])},
    }
    signature = bytes(payer.sign_message(encode_typed_data(full_message=message)).signature)
    cancel = chain.token.contract.get_function_by_signature(CANCEL_VRS)(
        payer.address, bytes.fromhex(nonce[2:]), signature[64], signature[:32], signature[32:64]
    )
    with chain.lock:
        tx_hash = cancel.transact({"from": chain.w3.eth.accounts[3], "gas": 200_000})
        assert chain.w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)["status"] == 1


async def test_an_authorization_not_yet_sent_is_unused(
    chain: TokenChain, payer: LocalAccount, requirements: PaymentRequirements
) -> None:
    assert _lookup(chain, pay(payer, requirements), requirements) == OnChain("unused")


async def test_a_settled_authorization_is_found_with_its_transaction_and_amount(
    chain: TokenChain, payer: LocalAccount, requirements: PaymentRequirements
) -> None:
    payment = pay(payer, requirements)
    receipt = await chain.settlement().settle(payment, requirements)
    assert receipt.success, receipt.error_message
    assert _lookup(chain, payment, requirements) == OnChain(
        "settled", tx_hash=receipt.transaction, amount=PRICE
    )
    # A cheaper price is paid by the same transaction; a dearer one, or another payee, is not.
    cheaper = requirements.model_copy(update={"amount": str(PRICE - 1)})
    assert _lookup(chain, payment, cheaper).status == "settled"
    dearer = requirements.model_copy(update={"amount": str(PRICE + 1)})
    assert _lookup(chain, payment, dearer) == OnChain("used_elsewhere")
    elsewhere = requirements.model_copy(update={"pay_to": chain.new_account("0").address})
    assert _lookup(chain, payment, elsewhere) == OnChain("used_elsewhere")


async def test_a_canceled_authorization_is_canceled(
    chain: TokenChain, payer: LocalAccount, requirements: PaymentRequirements
) -> None:
    payment = pay(payer, requirements)
    _cancel(chain, payer, payment.payload.authorization.nonce)
    assert _lookup(chain, payment, requirements) == OnChain("canceled")
    assert not (await chain.settlement().settle(payment, requirements)).success


async def test_a_use_older_than_the_lookback_is_never_taken_for_a_settlement(
    chain: TokenChain, payer: LocalAccount, requirements: PaymentRequirements
) -> None:
    payment = pay(payer, requirements)
    assert (await chain.settlement().settle(payment, requirements)).success
    chain.new_account("1")  # a block (or more) after the settlement
    assert _lookup(chain, payment, requirements, lookback=0) == OnChain("used_elsewhere")


async def test_a_reader_on_another_chain_than_its_network_raises(
    chain: TokenChain, payer: LocalAccount, requirements: PaymentRequirements
) -> None:
    reader = ChainReader(chain.w3, BASE)
    with chain.lock, pytest.raises(SettlementError, match=r"on chain \d+, but .* eip155:8453"):
        lookup_authorization(reader, pay(payer, requirements), requirements, lookback_blocks=10)
