"""The official `x402` batch-settlement client paying our server over MCP, on a chain under
test: it reads the challenge, signs with the official scheme, sends `_meta["x402/payment"]`
and feeds the answer (a receipt, or a corrective challenge) to the scheme's own hook, as an
HTTP client of the official SDK does for itself."""

from __future__ import annotations

import os
from typing import Any

from eth_account.signers.local import LocalAccount
from mcp import Client
from mcp.types import CallToolResult
from web3 import Web3
from x402.mechanisms.evm.batch_settlement import compute_channel_id
from x402.mechanisms.evm.batch_settlement.client import (
    BatchSettlementEvmScheme,
    BatchSettlementEvmSchemeOptions,
    InMemoryClientChannelStorage,
)
from x402.mechanisms.evm.batch_settlement.client.voucher import sign_voucher
from x402.mechanisms.evm.batch_settlement.types import RefundPayload
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.schemas import PaymentPayload as OfficialPayload
from x402.schemas import PaymentRequired as OfficialPaymentRequired
from x402.schemas import PaymentRequirements as OfficialRequirements
from x402.schemas import SettleResponse as OfficialSettleResponse
from x402.schemas.hooks import PaymentResponseContext

from x402_mcp.chains.devchain import TokenChain
from x402_mcp.client.payer import read_challenge

META_PAYMENT, META_RESPONSE = "x402/payment", "x402/payment-response"


def challenge_json(result: CallToolResult) -> dict[str, Any]:
    """The `PaymentRequired` object of a challenge, as the client reads it off the wire."""
    return read_challenge(result).dump()


class TokenChainSigner(EthAccountSigner):
    """The official signer, reading contracts from the embedded chain (what its RPC signer
    does over HTTP): the client's channel recovery needs it."""

    def __init__(self, account: LocalAccount, chain: TokenChain) -> None:
        super().__init__(account)
        self._chain = chain

    def read_contract(self, address: str, abi: list[dict[str, Any]], function_name: str, *args: Any) -> Any:
        with self._chain.lock:
            contract = self._chain.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)
            return getattr(contract.functions, function_name)(*args).call()


class BatchPayer:
    """One payer with one official batch-settlement client and its channel storage."""

    def __init__(self, account: LocalAccount, chain: TokenChain) -> None:
        self.account = account
        self.storage = InMemoryClientChannelStorage()
        options = BatchSettlementEvmSchemeOptions(storage=self.storage, salt="0x" + os.urandom(32).hex())
        self.signer = TokenChainSigner(account, chain)
        self.scheme = BatchSettlementEvmScheme(self.signer, options)

    def sign(self, challenge: CallToolResult) -> tuple[dict[str, Any], OfficialRequirements]:
        """The payment for the challenge's batch-settlement offer, and that offer."""
        accepted = next(a for a in read_challenge(challenge).accepts if a.scheme == "batch-settlement")
        requirements = OfficialRequirements.model_validate(accepted.dump())
        inner = self.scheme.create_payment_payload(requirements)
        return {"x402Version": 2, "accepted": accepted.dump(), "payload": inner}, requirements

    def heard(
        self, payment: dict[str, Any], requirements: OfficialRequirements, result: CallToolResult
    ) -> bool:
        """Feed the answer to the client's hook; whether it recovered from a corrective challenge."""
        meta = result.meta or {}
        payload = OfficialPayload.model_validate(payment)
        if META_RESPONSE in meta:
            settle = OfficialSettleResponse.model_validate(meta[META_RESPONSE])
            context = PaymentResponseContext(
                payment_payload=payload, requirements=requirements, settle_response=settle
            )
            self.scheme.scheme_hooks.on_payment_response(context)
            return False
        if result.is_error and "x402Version" in str(result.content[:1]):  # a challenge, not the tool's error
            required = OfficialPaymentRequired.model_validate(challenge_json(result))
            context = PaymentResponseContext(
                payment_payload=payload, requirements=requirements, payment_required=required
            )
            return self.scheme.scheme_hooks.on_payment_response(context) is not None
        return False

    def refund(self, challenge: CallToolResult) -> tuple[dict[str, Any], OfficialRequirements]:
        """A refund of the whole unspent balance, as the official client's refund flow builds it:
        a zero-charge voucher at the cumulative amount its storage holds."""
        accepted = next(a for a in read_challenge(challenge).accepts if a.scheme == "batch-settlement")
        requirements = OfficialRequirements.model_validate(accepted.dump())
        config = self.scheme.build_channel_config(requirements)
        channel = compute_channel_id(config, str(requirements.network))
        state = self.storage.get(channel.lower())
        assert state is not None, "no channel to refund"
        voucher = sign_voucher(
            self.signer, channel, state.charged_cumulative_amount or "0", str(requirements.network)
        )
        payload = RefundPayload()
        payload.channel_config = config
        payload.voucher = voucher
        return {"x402Version": 2, "accepted": accepted.dump(), "payload": payload.to_dict()}, requirements

    async def pay(
        self, client: Client, tool: str, arguments: dict[str, Any]
    ) -> tuple[CallToolResult, dict[str, Any]]:
        """Call `tool`, take its challenge, pay it: the paid answer, and the payment sent."""
        challenge = await client.call_tool(tool, arguments)
        payment, requirements = self.sign(challenge)
        result = await client.call_tool(tool, arguments, meta={META_PAYMENT: payment})
        self.heard(payment, requirements, result)
        return result, payment
