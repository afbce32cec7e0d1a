"""Our USDC contract on a development node: deploy it, mint, read balances.

The owner must be an account the node holds unlocked (eth-tester's and anvil's
prefunded accounts are), because deploying and minting go through
`eth_sendTransaction`. Every call here blocks; callers on an event loop should
run them in a worker thread.
"""

from __future__ import annotations

from typing import Any

from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.types import TxParams

from ..core.money import USDC_DECIMALS
from ..core.networks import Asset
from ..errors import X402MCPError
from ..settlement.contracts import usdc_artifact

__all__ = ["UsdcToken"]

_DEPLOY_GAS = 3_000_000
_MINT_GAS = 150_000
_RECEIPT_TIMEOUT = 30.0
# Dev nodes answer within milliseconds; the default 0.1 s poll would dominate test time.
_POLL_LATENCY = 0.01


class UsdcToken:
    """A deployed instance of `USDC.sol`, seen through one Web3 connection."""

    def __init__(
        self, w3: Web3, address: str, *, owner: str, name: str, version: str, symbol: str = "USDC"
    ) -> None:
        self._w3 = w3
        self._owner = to_checksum_address(owner)
        self.asset = Asset(address, name=name, version=version, decimals=USDC_DECIMALS, symbol=symbol)
        self.contract: Contract = w3.eth.contract(
            address=to_checksum_address(self.asset.address), abi=usdc_artifact().abi
        )

    @classmethod
    def deploy(cls, w3: Web3, *, owner: str, name: str, version: str, symbol: str = "USDC") -> UsdcToken:
        """Deploy a fresh token whose EIP-712 domain is (`name`, `version`); `owner` mints.

        Raises:
            X402MCPError: if the deployment transaction fails.
        """
        artifact = usdc_artifact()
        factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        tx_hash = factory.constructor(name, symbol, version).transact({"from": owner, "gas": _DEPLOY_GAS})
        receipt = w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=_RECEIPT_TIMEOUT, poll_latency=_POLL_LATENCY
        )
        if receipt["status"] != 1 or receipt["contractAddress"] is None:
            raise X402MCPError(f"deploying USDC failed in transaction {tx_hash.to_0x_hex()}")
        return cls(w3, receipt["contractAddress"], owner=owner, name=name, version=version, symbol=symbol)

    @property
    def address(self) -> str:
        return self.asset.address

    @property
    def owner(self) -> str:
        return self._owner

    def mint(self, to: str, amount: int) -> None:
        """Create `amount` atomic units in `to`'s balance.

        Raises:
            X402MCPError: if the mint reverts (a zero amount or the zero address).
        """
        self._transact(
            self.contract.functions.mint(to_checksum_address(to), amount), what=f"minting {amount} to {to}"
        )

    def balance_of(self, address: str) -> int:
        """`address`'s balance in atomic units."""
        return int(self.contract.functions.balanceOf(to_checksum_address(address)).call())

    def authorization_state(self, authorizer: str, nonce: str) -> bool:
        """Whether the EIP-3009 `nonce` of `authorizer` was used or canceled."""
        return bool(
            self.contract.functions.authorizationState(
                to_checksum_address(authorizer), bytes.fromhex(nonce[2:])
            ).call()
        )

    def _transact(self, call: Any, *, what: str) -> None:
        params: TxParams = {"from": self._owner, "gas": _MINT_GAS}
        tx_hash = call.transact(params)
        receipt = self._w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=_RECEIPT_TIMEOUT, poll_latency=_POLL_LATENCY
        )
        if receipt["status"] != 1:
            raise X402MCPError(f"{what} failed in transaction {tx_hash.to_0x_hex()}")
