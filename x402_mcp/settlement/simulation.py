"""Verifying an exact-EVM payment on the chain: one `eth_call` that simulates the transfer.

Pure checks (`checks.check_exact_payment`) have passed; what only the chain can
tell is asked here: the token has code, the payer's contract wallet (EIP-1271) or
delegation (EIP-7702) accepts the signature, a counterfactual wallet (ERC-6492)
deploys through an allowed factory, the nonce is unused and the balance covers
the amount. A revert is mapped to an x402 reason code and a sentence for the payer.
"""

from __future__ import annotations

from collections.abc import Iterable

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address

from ..core.erc6492 import Erc6492Signature, default_erc6492_factories
from ..core.networks import Network
from ..core.text import shown
from .checks import (
    ASSET_NOT_DEPLOYED,
    ERC6492_FACTORY_NOT_ALLOWED,
    INSUFFICIENT_BALANCE,
    INVALID_SIGNATURE,
    NONCE_ALREADY_USED,
    SIMULATION_FAILED,
    TRANSACTION_FAILED,
    UNDEPLOYED_SMART_WALLET,
    VALID_AFTER,
    VALID_BEFORE,
    CheckedPayment,
    Refusal,
)
from .contracts import erc6492_simulation_artifact
from .contracts.eip3009 import (
    authorization_state_calldata,
    balance_of_calldata,
    decode_bool,
    decode_uint,
    is_vrs_signature,
    transfer_with_authorization_calldata,
)
from .relayer import Relayer
from .reverts import reason_for_revert

__all__ = [
    "CONTRACT_WALLET_GAS_LIMIT",
    "ECDSA_GAS_LIMIT",
    "WALLET_DEPLOY_GAS_LIMIT",
    "ChainVerifier",
    "deploy_failed",
    "revert_refusal",
]

# transferWithAuthorization costs about 60-90k gas with an ECDSA signature; a contract
# wallet's isValidSignature can cost far more (passkey wallets verify P-256 in the EVM).
# The limit is only a cap: unused gas is not paid for.
ECDSA_GAS_LIMIT = 150_000
CONTRACT_WALLET_GAS_LIMIT = 500_000
# Deploying a smart wallet through its factory (an ERC-1967 proxy and its initialisation
# cost a few hundred thousand gas); the simulation of deployment plus transfer gets both caps.
WALLET_DEPLOY_GAS_LIMIT = 1_000_000


class ChainVerifier:
    """Simulates payments on `network` through `relayer`, with the gas and wallet-factory policy.

    `gas_limit` caps every transaction (default: by signature kind); `erc6492_factories`
    are added to the network's default allowlist (see `LocalSettlement`).
    """

    def __init__(
        self, relayer: Relayer, network: Network, *, gas_limit: int | None, erc6492_factories: Iterable[str]
    ) -> None:
        self._relayer = relayer
        self._network = network
        self._gas_limit = gas_limit
        #: Factories (lowercase) an ERC-6492 signature may name.
        self.erc6492_factories = default_erc6492_factories(network.chain_id, erc6492_factories)
        # Tokens seen to have code (only touched in the worker); a token never loses its code.
        self._deployed_assets: set[str] = set()

    def gas_for(self, checked: CheckedPayment) -> int:
        if self._gas_limit is not None:
            return self._gas_limit
        if checked.signer_verified and is_vrs_signature(checked.exact):
            return ECDSA_GAS_LIMIT
        return CONTRACT_WALLET_GAS_LIMIT

    def factory_refusal(self, deployment: Erc6492Signature) -> Refusal | None:
        if deployment.factory.lower() in self.erc6492_factories:
            return None
        allowed = ", ".join(sorted(self.erc6492_factories)) or "none"
        return Refusal(
            ERC6492_FACTORY_NOT_ALLOWED,
            f"The ERC-6492 signature deploys the payer's wallet through factory {deployment.factory}, "
            f"which this server does not call (allowed on {self._network.label}: {allowed}); "
            "deploy the wallet first, or pay from a wallet made by an allowed factory.",
        )

    def verify(self, checked: CheckedPayment, asset: str) -> Refusal | None:
        """None when the transfer would succeed if sent now, else why not (blocking: run it
        in the worker thread)."""
        relayer = self._relayer
        relayer.ensure_chain()
        if asset.lower() not in self._deployed_assets:
            if not relayer.has_code(asset):
                return Refusal(ASSET_NOT_DEPLOYED, f"No token contract is deployed at {asset}.")
            self._deployed_assets.add(asset.lower())
        deployment = checked.deployment
        has_code = checked.signer_verified or relayer.has_code(checked.payer)
        if deployment is None and not has_code:
            # An account without code can only sign with ECDSA, and that did not recover to it.
            return Refusal(INVALID_SIGNATURE, _BAD_SIGNATURE.format(payer=checked.payer))

        calldata = transfer_with_authorization_calldata(checked.exact)
        # "pending": the state and clock the transaction would meet if sent now, not
        # those of the last block (an idle dev chain's last block can be minutes old).
        if deployment is not None and not has_code:
            refusal = self.factory_refusal(deployment)
            if refusal is not None:
                return refusal
            # A counterfactual wallet: deploy it and transfer, together, in one deployless eth_call.
            simulation = _erc6492_simulation(checked.payer, deployment, asset, calldata)
            gas = WALLET_DEPLOY_GAS_LIMIT + self.gas_for(checked)
            message = relayer.simulate(None, simulation, gas=gas, block="pending")
            if message is not None and message.startswith("ERC6492:"):
                return Refusal(UNDEPLOYED_SMART_WALLET, deploy_failed(deployment, message))
        else:
            gas = self.gas_for(checked)
            message = relayer.simulate(asset, calldata, gas=gas, block="pending")
        if message is None:
            return None
        refusal = revert_refusal(message, settling=False)
        auth = checked.exact.authorization
        if refusal.reason == NONCE_ALREADY_USED:
            return Refusal(NONCE_ALREADY_USED, _NONCE_USED.format(nonce=auth.nonce))
        if refusal.reason == INVALID_SIGNATURE and not checked.signer_verified:
            return Refusal(INVALID_SIGNATURE, _WALLET_REFUSED.format(payer=checked.payer, gas=gas))
        if refusal.reason == INVALID_SIGNATURE and relayer.has_code(checked.payer):
            # The key signed, but the account has code (an EIP-7702 delegation): the token asks
            # that code through EIP-1271, and it did not vouch for the account's own key.
            return Refusal(INVALID_SIGNATURE, _DELEGATE_REFUSED.format(payer=checked.payer))
        if refusal.reason == INVALID_SIGNATURE:
            return Refusal(INVALID_SIGNATURE, _BAD_SIGNATURE.format(payer=checked.payer))
        if refusal.reason == INSUFFICIENT_BALANCE:
            balance = decode_uint(relayer.call(asset, balance_of_calldata(checked.payer)))
            return Refusal(
                INSUFFICIENT_BALANCE,
                f"{checked.payer} holds {balance} atomic units of the token, "
                f"but the payment needs {checked.value}.",
            )
        if refusal.reason == SIMULATION_FAILED:
            # An unfamiliar revert string (another token): diagnose the two usual causes directly.
            if decode_bool(relayer.call(asset, authorization_state_calldata(auth.from_, auth.nonce))):
                return Refusal(NONCE_ALREADY_USED, _NONCE_USED.format(nonce=auth.nonce))
            if decode_uint(relayer.call(asset, balance_of_calldata(checked.payer))) < checked.value:
                return Refusal(
                    INSUFFICIENT_BALANCE, f"{checked.payer} does not hold {checked.value} atomic units."
                )
        return refusal


_BAD_SIGNATURE = (
    "The signature does not match the authorization: it was not made by {payer}; check the token's "
    "EIP-712 domain (name, version, chain id and contract address)."
)
_WALLET_REFUSED = (
    "The contract wallet {payer} did not accept the signature for this authorization: its EIP-1271 "
    "isValidSignature answered something other than the magic value, reverted, or ran out of the "
    "{gas} gas allowed. Check the wallet's owner and the token's EIP-712 domain."
)
_DELEGATE_REFUSED = (
    "The signature is {payer}'s own, but {payer} has code (an EIP-7702 delegation), so the token asks "
    "that code through EIP-1271, and it did not accept the signature; delegate to code that implements "
    "isValidSignature for the account's key, or pay from another account."
)
_NONCE_USED = "This authorization (nonce {nonce}) was already used or canceled; sign a new one."

# What a payer is told when the token itself refuses, by reason code.
_REVERT_MESSAGES = {
    NONCE_ALREADY_USED: "The token says this authorization was already used or canceled; sign a new one.",
    INVALID_SIGNATURE: "The token rejected the signature for this authorization.",
    INSUFFICIENT_BALANCE: "The payer's token balance is below the amount.",
    VALID_BEFORE: "The authorization has expired by the chain's clock.",
    VALID_AFTER: "The authorization is not yet valid by the chain's clock.",
}


def deploy_failed(deployment: Erc6492Signature, message: str | None) -> str:
    why = f": {shown(message, 200)}" if message else ""
    return (
        f"The payer's wallet could not be deployed through factory {deployment.factory} with the "
        f"ERC-6492 signature's calldata{why}."
    )


def _erc6492_simulation(payer: str, deployment: Erc6492Signature, asset: str, calldata: bytes) -> bytes:
    """Initcode of `Erc6492Simulation`: deploy `payer` via its factory, then call `asset` with `calldata`."""
    arguments = abi_encode(
        ["address", "bytes", "address", "address", "bytes"],
        [
            deployment.factory,
            deployment.factory_calldata,
            to_checksum_address(payer),
            to_checksum_address(asset),
            calldata,
        ],
    )
    return bytes.fromhex(erc6492_simulation_artifact().bytecode[2:]) + bytes(arguments)


def revert_refusal(message: str | None, *, settling: bool) -> Refusal:
    """A refusal for a token revert, mapped from FiatTokenV2's wording."""
    reason = reason_for_revert(message)
    if reason is not None:
        return Refusal(reason, _REVERT_MESSAGES[reason])
    # The token at `asset` may be anyone's contract: its revert text is outside text.
    why = f": {shown(message, 200)}" if message else " without a reason"
    if settling:
        return Refusal(TRANSACTION_FAILED, f"The settlement transaction reverted{why}.")
    return Refusal(SIMULATION_FAILED, f"Simulating the transfer reverted{why}.")
