"""The oracle: the official x402 SDK's batch-settlement client, server scheme and facilitator run
a whole channel lifecycle against our contract doubles on anvil.

Deposit (through the collector, the facilitator reading state through Multicall3), vouchers,
a cold-started client recovering the channel from `channels()`, a batched claim, the sweep to
the payee and a cooperative refund of the rest: if our doubles drifted from the interface or
the rules the SDK relies on, one of these steps fails.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from x402_mcp.schemes.batch.constants import BATCH_SETTLEMENT_ADDRESS

from ..chains import AnvilChain
from .batch import BatchContracts

pytestmark = pytest.mark.anvil

PRICE = 1_000  # atomic units per call
CALLS = 5


class OfficialSide:
    """The SDK's server scheme behind an in-process resource server, its facilitator, and a client."""

    def __init__(self, anvil: AnvilChain, payee: str, payer: LocalAccount) -> None:
        from x402 import x402FacilitatorSync, x402ResourceServerSync
        from x402.mechanisms.evm import FacilitatorWeb3Signer
        from x402.mechanisms.evm.batch_settlement.authorizer_signer import LocalAuthorizerSigner
        from x402.mechanisms.evm.batch_settlement.facilitator import BatchSettlementEvmFacilitator
        from x402.mechanisms.evm.batch_settlement.server import (
            BatchSettlementEvmScheme,
            BatchSettlementEvmSchemeServerConfig,
        )
        from x402.schemas import AssetAmount, ResourceConfig

        self.anvil = anvil
        self.payer = payer
        gas = Account.create()
        anvil.fund_eth(gas.address, 10**18)
        authorizer = LocalAuthorizerSigner(Account.create())
        self.facilitator = x402FacilitatorSync()
        signer = FacilitatorWeb3Signer(gas.key.to_0x_hex(), anvil.rpc_url)
        self.facilitator.register(
            [anvil.network], BatchSettlementEvmFacilitator(signer, authorizer_signer=authorizer)
        )
        self.scheme = BatchSettlementEvmScheme(
            payee, BatchSettlementEvmSchemeServerConfig(receiver_authorizer_signer=authorizer)
        )
        self.server = x402ResourceServerSync(self.facilitator)
        self.server.register(anvil.network, self.scheme)
        self.server.initialize()
        domain = {"name": anvil.asset.name, "version": anvil.asset.version}
        price = AssetAmount(amount=str(PRICE), asset=anvil.usdc, extra=domain)
        config = ResourceConfig(scheme="batch-settlement", pay_to=payee, price=price, network=anvil.network)
        (self.requirements,) = self.server.build_payment_requirements(config)
        self.client = self.new_client()

    def new_client(self) -> Any:
        """A client with fresh (empty) channel storage: it knows only what the chain says."""
        from x402 import x402ClientSync
        from x402.mechanisms.evm.batch_settlement.client import BatchSettlementEvmScheme
        from x402.mechanisms.evm.signers import EthAccountSignerWithRPC

        client = x402ClientSync()
        client.register(
            self.anvil.network,
            BatchSettlementEvmScheme(EthAccountSignerWithRPC(self.payer, rpc_url=self.anvil.rpc_url)),
        )
        client.set_spend_controls(False)  # our token is not among the SDK's default assets
        return client

    def paid_call(self) -> tuple[str, Any]:
        """One paid request end to end: the payload's type and the server's settle response."""
        from x402.schemas import PaymentRequired
        from x402.schemas.hooks import PaymentResponseContext

        requirements = self.requirements.model_copy(deep=True)  # the server's hooks mutate it
        payload = self.client.create_payment_payload(PaymentRequired(accepts=[requirements]))
        verified = self.server.verify_payment(payload, requirements)
        assert verified.is_valid, verified
        settled = self.server.settle_payment(payload, requirements)
        assert settled.success, settled
        context = PaymentResponseContext(
            payment_payload=payload, requirements=requirements, settle_response=settled
        )
        self.client.handle_payment_response(context)
        return str(payload.payload["type"]), settled

    def channel_manager(self) -> Any:
        from x402.mechanisms.evm.batch_settlement.server.channel_manager_common import (
            ChannelManagerConfigSync,
        )
        from x402.mechanisms.evm.batch_settlement.server.channel_manager_sync import (
            BatchSettlementChannelManagerSync,
        )

        config = ChannelManagerConfigSync(
            scheme=self.scheme,
            facilitator=self.facilitator,
            receiver=self.requirements.pay_to,
            token=self.anvil.usdc,
            network=self.anvil.network,
        )
        return BatchSettlementChannelManagerSync(config)


def test_the_official_sdk_runs_a_channel_lifecycle_on_our_contracts(anvil: AnvilChain) -> None:
    contracts = BatchContracts(anvil)
    payer = anvil.new_account(usdc="10")
    payee = Account.create().address
    official = OfficialSide(anvil, payee, payer)
    escrow_before = anvil.balance_of(BATCH_SETTLEMENT_ADDRESS)

    kinds = []
    for _ in range(CALLS):
        kind, settled = official.paid_call()
        kinds.append(kind)
    assert kinds == ["deposit"] + ["voucher"] * (CALLS - 1)
    state = settled.extra["channelState"]
    deposit = int(state["balance"])
    assert deposit >= PRICE * CALLS
    assert int(state["chargedCumulativeAmount"]) == PRICE * CALLS
    # The SDK's channel id is the one our contract keeps the deposit under.
    channel_id = bytes.fromhex(state["channelId"][2:])
    assert contracts.settlement.functions.channels(channel_id).call() == [deposit, 0]
    assert anvil.balance_of(BATCH_SETTLEMENT_ADDRESS) == escrow_before + deposit
    assert anvil.balance_of(payer.address) == 10_000_000 - deposit

    # A client that lost its state rebuilds the channel from our contract and pays on with a voucher.
    official.client = official.new_client()
    manager = official.channel_manager()
    manager.claim()
    assert contracts.settlement.functions.channels(channel_id).call() == [deposit, PRICE * CALLS]
    kind, _ = official.paid_call()
    assert kind == "voucher"

    result = manager.claim_and_settle()
    assert result["settle"].transaction
    assert anvil.balance_of(payee) == PRICE * (CALLS + 1)
    assert contracts.settlement.functions.receivers(payee, anvil.usdc).call() == [PRICE * (CALLS + 1)] * 2

    (refund,) = manager.refund()
    assert refund.transaction
    assert anvil.balance_of(payer.address) == 10_000_000 - PRICE * (CALLS + 1)
    assert anvil.balance_of(BATCH_SETTLEMENT_ADDRESS) == escrow_before
    assert contracts.settlement.functions.refundNonce(channel_id).call() == 1
