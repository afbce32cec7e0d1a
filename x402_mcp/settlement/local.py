"""Local settlement: verify and settle exact-EVM payments ourselves, with web3 and our own gas key.

This is what a facilitator does, done in-process: the server signs and sends
`transferWithAuthorization` from its gas account, so it needs an RPC URL and a
key holding a little ETH, but no third party.

Every web3 call blocks, so each one (through the `Relayer`) runs in a worker
thread. Over a JSON-RPC URL (`from_rpc`, or any plain `HTTPProvider`) the relayer
has its own thread-safe connections, and several workers may run at once: the
gas account's nonce is taken under the relayer's lock, and a send waiting for its
receipt in the same round trip (`eth_sendRawTransactionSync`) holds up no other
call. Other providers (the embedded py-evm chain) get one worker at a time, behind
a one-token `CapacityLimiter`, which also serialises their nonce.

A paid call costs two JSON-RPC round trips once the chain id, the token's code,
the gas nonce and the fees are cached: the `eth_call` simulation of `verify` and
the send of `settle`, whose answer is the receipt where the node offers it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar, TypeVarTuple, Unpack

import anyio
import anyio.to_thread
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.types import TxReceipt

from ..core.erc6492 import Erc6492Signature, default_erc6492_factories
from ..core.links import service_url
from ..core.networks import Network, resolve_network
from ..core.text import shown
from ..core.wire import (
    AnyPaymentPayload,
    PaymentRequirements,
    SettleResponse,
    SupportedKind,
    SupportedResponse,
    VerifyResponse,
)
from ..errors import ConfigurationError, SettlementError
from .base import OnChain
from .checks import (
    ASSET_NOT_DEPLOYED,
    ERC6492_FACTORY_NOT_ALLOWED,
    INSUFFICIENT_BALANCE,
    INVALID_SIGNATURE,
    NONCE_ALREADY_USED,
    SIMULATION_FAILED,
    TRANSACTION_FAILED,
    TRANSFER_EVENT_MISMATCH,
    UNDEPLOYED_SMART_WALLET,
    VALID_AFTER,
    VALID_BEFORE,
    CheckedPayment,
    Refusal,
    check_exact_payment,
    reported_network,
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
from .lookup import lookup_authorization, payment_problem
from .relayer import Relayer, Sent
from .reverts import reason_for_revert

__all__ = ["RECEIPT_POLL_SECONDS", "LocalSettlement", "receipt_poll_delays"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# transferWithAuthorization costs about 60-90k gas with an ECDSA signature; a contract
# wallet's isValidSignature can cost far more (passkey wallets verify P-256 in the EVM).
# The limit is only a cap: unused gas is not paid for.
ECDSA_GAS_LIMIT = 150_000
CONTRACT_WALLET_GAS_LIMIT = 500_000
# Deploying a smart wallet through its factory (an ERC-1967 proxy and its initialisation
# cost a few hundred thousand gas); the simulation of deployment plus transfer gets both caps.
WALLET_DEPLOY_GAS_LIMIT = 1_000_000

# The first receipt poll over JSON-RPC comes soon (a dev chain mines within milliseconds of
# the send); later waits double up to `LONGEST_RECEIPT_POLL`, so a 2 s block (Base) costs
# about seven polls and a slow one about one a second.
RECEIPT_POLL_SECONDS = 0.02
LONGEST_RECEIPT_POLL = 1.0

# Worker threads one backend may keep busy when its relayer allows concurrent calls:
# settlements waiting for a block each hold one.
_CONCURRENT_WORKERS = 32


def receipt_poll_delays(first: float, longest: float = LONGEST_RECEIPT_POLL) -> Iterator[float]:
    """The waits before each receipt poll: `first`, doubling, capped at `longest` (or `first` if longer)."""
    cap = max(first, longest)
    delay = first
    while True:
        yield delay
        delay = min(2 * delay, cap)


class LocalSettlement:
    """A `Settlement` backend that settles on-chain itself, paying gas from `account`.

    Args:
        w3: a synchronous Web3 connected to the chain of `network`.
        account: the gas-paying account; it needs ETH, never the payer's tokens.
        network: the chain this backend serves; requirements for any other chain
            raise `SettlementError` (a configuration mistake, not the payer's).
        clock: unix time for the validity-window checks (wall clock by default,
            like the official facilitator; tests inject their own).
        lock: a lock shared with other users of `w3` that are not thread-safe
            (DevChain's embedded py-evm); every web3 call here holds it.
        receipt_timeout: seconds to wait for a sent transaction to be mined.
        poll_latency: seconds before the first receipt poll; each later wait doubles,
            up to 1 s or `poll_latency` if longer (see `receipt_poll_delays`).
        gas_limit: gas cap per transaction; by default 150k for ECDSA signatures
            and 500k for contract-wallet signatures.
        erc6492_factories: factories this backend may call to deploy a payer's wallet
            for an ERC-6492 signature, added to the default (the Coinbase Smart Wallet
            factory on Base and Base Sepolia, none elsewhere). A signature naming any
            other factory is refused: calling it would be a transaction of the payer's
            choosing paid by our gas account.
    """

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        network: Network,
        clock: Callable[[], float] = time.time,
        *,
        lock: contextlib.AbstractContextManager[object] | None = None,
        receipt_timeout: float = 60.0,
        poll_latency: float = 0.01,
        gas_limit: int | None = None,
        erc6492_factories: Iterable[str] = (),
    ) -> None:
        if not (math.isfinite(poll_latency) and poll_latency > 0):
            raise ConfigurationError(
                f"poll_latency must be a positive number of seconds, not {poll_latency!r}"
            )
        self._relayer = Relayer(w3, account, network)
        self._network = network
        self._clock = clock
        self._lock: contextlib.AbstractContextManager[object] = (
            lock if lock is not None else contextlib.nullcontext()
        )
        self._receipt_timeout = receipt_timeout
        self._poll_latency = poll_latency
        self._gas_limit = gas_limit
        #: Factories (lowercase) an ERC-6492 signature may name; see the class docstring.
        self.erc6492_factories = default_erc6492_factories(network.chain_id, erc6492_factories)
        self._limiter = anyio.CapacityLimiter(_CONCURRENT_WORKERS if self._relayer.concurrent else 1)
        # Tokens seen to have code (only touched in the worker); a token never loses its code.
        self._deployed_assets: set[str] = set()
        # Authorizations being settled right now: a concurrent duplicate is refused
        # instead of being broadcast to revert (and burn gas).
        self._in_flight: set[tuple[str, str]] = set()
        #: How far back (in blocks) `lookup` searches for the transaction that used an authorization.
        self.lookup_blocks = 100_000

    @classmethod
    def from_rpc(
        cls,
        rpc_url: str,
        private_key: str,
        *,
        network: str | Network,
        clock: Callable[[], float] = time.time,
        request_timeout: float = 10.0,
        receipt_timeout: float = 60.0,
        poll_latency: float = RECEIPT_POLL_SECONDS,
        gas_limit: int | None = None,
        erc6492_factories: Iterable[str] = (),
    ) -> LocalSettlement:
        """Settle over JSON-RPC at `rpc_url` with the gas key `private_key`.

        Nothing is sent yet: the node's chain id is checked against `network` on
        first use (a mismatch raises `SettlementError`). `request_timeout` is the
        deadline for each whole JSON-RPC answer (headers and body: a node trickling
        bytes cannot hold a call longer), and no answer over 4 MiB is read; either
        failure is a `SettlementError`. The other options are the constructor's.

        Raises:
            ConfigurationError: for a network name that is not known, or a `poll_latency`
                that is not a positive number of seconds.
            ValueError: for a malformed private key.
        """
        rpc_url = service_url(rpc_url, what="the RPC URL")  # never quoted: it may carry an API key
        w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": request_timeout}))
        account: LocalAccount = Account.from_key(private_key)
        return cls(
            w3,
            account,
            resolve_network(network),
            clock,
            receipt_timeout=receipt_timeout,
            poll_latency=poll_latency,
            gas_limit=gas_limit,
            erc6492_factories=erc6492_factories,
        )

    def __repr__(self) -> str:
        return f"LocalSettlement(network={self._network.caip2!r}, signer={self.signer!r})"

    @property
    def network(self) -> Network:
        return self._network

    @property
    def signer(self) -> str:
        """The gas account's address: it sends every settlement transaction."""
        return self._relayer.address

    def resync(self) -> None:
        """Forget the cached gas nonce and fees; the next settlement reads them from the chain.

        Call it after rewinding the chain (a snapshot revert) or after sending from
        the gas account by other means.
        """
        self._relayer.resync()

    # ------------------------------------------------------------------ protocol

    async def supported(self) -> SupportedResponse:
        """`exact` on this network for x402 v2 (CAIP-2) and, where it has one, v1 (its v1 name)."""
        kinds = [SupportedKind(x402_version=2, scheme="exact", network=self._network.caip2)]
        if self._network.v1_name:
            kinds.append(SupportedKind(x402_version=1, scheme="exact", network=self._network.v1_name))
        return SupportedResponse(kinds=kinds, signers={"eip155:*": [self.signer]})

    async def verify(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> VerifyResponse:
        """Check `payload` against `requirements` without moving money.

        Pure checks run first; the chain is asked only if they pass, usually in a
        single `eth_call` that simulates the transfer (nonce unused, balance,
        contract-wallet signature).

        Raises:
            SettlementError: the node failed, or `requirements` are for another chain.
        """
        self._require_our_network(requirements)
        payer = payload.payload.authorization.from_
        checked = check_exact_payment(payload, requirements, now=int(self._clock()))
        if isinstance(checked, Refusal):
            return _invalid(checked, payer)
        refusal = await self._call(self._verify_on_chain, checked, requirements.asset)
        if refusal is not None:
            return _invalid(refusal, payer)
        return VerifyResponse(is_valid=True, payer=payer)

    async def settle(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        """Send `transferWithAuthorization` and wait until it is mined.

        Returns success only for a mined transaction with status 1 whose receipt is
        its own (the hash we computed from the signed bytes) and whose logs show,
        from the token, `AuthorizationUsed(from, nonce)` and `Transfer(from, payTo, amount)`.
        A node answering with another transaction's receipt raises `SettlementError`. A refused or reverted
        payment returns `success=False` with an x402 reason code.

        Raises:
            SettlementError: the node failed, the transaction was not mined within
                `receipt_timeout` (it may still be mined later), or `requirements`
                are for another chain.
        """
        self._require_our_network(requirements)
        network = reported_network(payload, requirements)
        payer = payload.payload.authorization.from_
        checked = check_exact_payment(payload, requirements, now=int(self._clock()))
        if isinstance(checked, Refusal):
            return _failed(checked, network, payer)
        key = (payer.lower(), checked.exact.authorization.nonce.lower())
        if key in self._in_flight:
            return _failed(
                Refusal(
                    NONCE_ALREADY_USED,
                    "This authorization is already being settled; it can be used only once.",
                ),
                network,
                payer,
            )
        self._in_flight.add(key)
        try:
            return await self._settle_checked(checked, requirements.asset, network)
        finally:
            self._in_flight.discard(key)

    # ------------------------------------------------------------------ settle steps

    async def _settle_checked(self, checked: CheckedPayment, asset: str, network: str) -> SettleResponse:
        if checked.deployment is not None:
            refusal = await self._deploy_wallet(checked.payer, checked.deployment)
            if refusal is not None:
                return _failed(refusal, network, checked.payer)
        calldata = transfer_with_authorization_calldata(checked.exact)
        gas = self._gas_for(checked)
        sent = await self._send_mined(
            asset, calldata, gas=gas, before_retrying="check the authorization's state"
        )
        if sent.tx_hash is None or sent.receipt is None:
            # Some nodes refuse a reverting transaction at send time instead of mining it.
            return _failed(_revert_refusal(sent.revert, settling=True), network, checked.payer)
        tx_hash, receipt = sent.tx_hash.to_0x_hex(), sent.receipt
        if receipt["status"] != 1:
            # Replaying on the state after the transaction's block reproduces its revert, including
            # one caused by an earlier transaction in the same block (a concurrent duplicate).
            replay = functools.partial(
                self._relayer.simulate, asset, calldata, gas=gas, block=receipt["blockNumber"]
            )
            message = await self._call(replay)
            refusal = _revert_refusal(message, settling=True)
            logger.info("settlement %s reverted: %s", tx_hash, refusal.reason)
            return _failed(
                Refusal(refusal.reason, f"{refusal.message} (transaction {tx_hash})"), network, checked.payer
            )
        auth = checked.exact.authorization
        problem = payment_problem(
            receipt["logs"],
            asset=asset,
            authorizer=auth.from_,
            nonce=auth.nonce,
            pay_to=auth.to,
            value=checked.value,
        )
        if problem is not None:
            # A refusal, not a payment: the caller asks the token whether the authorization
            # was used before it lets the payer pay again (see `x402_mcp.gate.collect`).
            return _failed(
                Refusal(TRANSFER_EVENT_MISMATCH, f"Transaction {tx_hash} succeeded but {problem}."),
                network,
                checked.payer,
            )
        logger.info("settled %s units from %s in %s", checked.value, checked.payer, tx_hash)
        return SettleResponse(
            success=True, transaction=tx_hash, network=network, payer=checked.payer, amount=str(checked.value)
        )

    async def _deploy_wallet(self, payer: str, deployment: Erc6492Signature) -> Refusal | None:
        """Deploy `payer` through its (allowlisted) factory unless it has code already.

        A separate transaction before the transfer, because the token takes the
        wallet's own signature and the wallet must exist to check it. A crash after
        this step needs no undoing: the payer then has code, and a retry (or a
        payment settled by anyone else) skips straight to the transfer.
        """
        if await self._call(self._relayer.has_code, payer):
            return None  # deployed since the payer signed (by them or by an earlier attempt)
        refusal = self._factory_refusal(deployment)
        if refusal is not None:
            return refusal
        sent = await self._send_mined(
            deployment.factory,
            deployment.factory_calldata,
            gas=WALLET_DEPLOY_GAS_LIMIT,
            before_retrying=f"check whether {payer} has code",
        )
        if sent.tx_hash is None or sent.receipt is None:
            return Refusal(UNDEPLOYED_SMART_WALLET, _deploy_failed(deployment, sent.revert))
        tx_hash, receipt = sent.tx_hash.to_0x_hex(), sent.receipt
        if receipt["status"] != 1 or not await self._call(self._relayer.has_code, payer):
            return Refusal(
                UNDEPLOYED_SMART_WALLET, f"{_deploy_failed(deployment, None)} (transaction {tx_hash})"
            )
        logger.info("deployed the wallet %s through factory %s in %s", payer, deployment.factory, tx_hash)
        return None

    async def _send_mined(self, to: str, data: bytes, *, gas: int, before_retrying: str) -> Sent:
        """Send a transaction and wait (at most `receipt_timeout` from the send) until it is
        mined: `Sent` with its receipt, or the send's refusal (no hash, no receipt).

        Raises:
            SettlementError: not mined in time (the message says to `before_retrying`).
        """
        deadline = anyio.current_time() + self._receipt_timeout
        send = functools.partial(self._relayer.send, to, data, gas=gas, wait=self._receipt_timeout)
        sent = await self._call(send)
        if sent.tx_hash is None:
            return sent
        receipt = await self._mined(sent.tx_hash, sent.receipt, before_retrying, deadline)
        return Sent(sent.tx_hash, receipt, None)

    async def _mined(
        self, tx_hash: HexBytes, receipt: TxReceipt | None, before_retrying: str, deadline: float
    ) -> TxReceipt:
        """`receipt`, or the transaction's receipt once it is mined (polled until `deadline`)."""
        delays = receipt_poll_delays(self._poll_latency)
        while receipt is None:
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                # If the nonce was wrong the transaction waits forever: read it afresh next time.
                self.resync()
                raise SettlementError(
                    f"transaction {tx_hash.to_0x_hex()} was sent but not mined within "
                    f"{self._receipt_timeout:g} s; it may still be mined, so {before_retrying} "
                    "before retrying"
                )
            await anyio.sleep(min(next(delays), remaining))
            receipt = await self._call(self._relayer.receipt, tx_hash)
        return receipt

    def _factory_refusal(self, deployment: Erc6492Signature) -> Refusal | None:
        if deployment.factory.lower() in self.erc6492_factories:
            return None
        allowed = ", ".join(sorted(self.erc6492_factories)) or "none"
        return Refusal(
            ERC6492_FACTORY_NOT_ALLOWED,
            f"The ERC-6492 signature deploys the payer's wallet through factory {deployment.factory}, "
            f"which this server does not call (allowed on {self._network.label}: {allowed}); "
            "deploy the wallet first, or pay from a wallet made by an allowed factory.",
        )

    # ------------------------------------------------------------------ reconciliation

    async def lookup(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> OnChain:
        """Whether `payload`'s authorization reached the chain, and in which transaction.

        See `lookup_authorization`; it searches the last `lookup_blocks` blocks.

        Raises:
            SettlementError: the node failed, or `requirements` are for another chain.
        """
        self._require_our_network(requirements)
        find = functools.partial(
            lookup_authorization, self._relayer, payload, requirements, lookback_blocks=self.lookup_blocks
        )
        return await self._call(find)

    def _gas_for(self, checked: CheckedPayment) -> int:
        if self._gas_limit is not None:
            return self._gas_limit
        if checked.signer_verified and is_vrs_signature(checked.exact):
            return ECDSA_GAS_LIMIT
        return CONTRACT_WALLET_GAS_LIMIT

    # ------------------------------------------------------------------ worker-thread side

    async def _call(self, func: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
        return await anyio.to_thread.run_sync(
            functools.partial(self._guarded, func, *args), limiter=self._limiter
        )

    def _guarded(self, func: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
        with self._lock:
            try:
                return func(*args)
            except SettlementError:
                raise
            except Exception as exc:
                # The message stays generic: RPC errors often embed the node URL, and hosted
                # RPC URLs carry API keys. The cause (for the log) is chained.
                raise SettlementError(
                    f"the {self._network.label} node failed during settlement ({type(exc).__name__})"
                ) from exc

    def _verify_on_chain(self, checked: CheckedPayment, asset: str) -> Refusal | None:
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
            refusal = self._factory_refusal(deployment)
            if refusal is not None:
                return refusal
            # A counterfactual wallet: deploy it and transfer, together, in one deployless eth_call.
            simulation = _erc6492_simulation(checked.payer, deployment, asset, calldata)
            gas = WALLET_DEPLOY_GAS_LIMIT + self._gas_for(checked)
            message = relayer.simulate(None, simulation, gas=gas, block="pending")
            if message is not None and message.startswith("ERC6492:"):
                return Refusal(UNDEPLOYED_SMART_WALLET, _deploy_failed(deployment, message))
        else:
            gas = self._gas_for(checked)
            message = relayer.simulate(asset, calldata, gas=gas, block="pending")
        if message is None:
            return None
        refusal = _revert_refusal(message, settling=False)
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

    def _require_our_network(self, requirements: PaymentRequirements) -> None:
        if requirements.network != self._network.caip2:
            raise SettlementError(
                f"this settlement backend serves {self._network.caip2}, not {shown(requirements.network)}; "
                "configure a backend for that network"
            )


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


def _deploy_failed(deployment: Erc6492Signature, message: str | None) -> str:
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


def _revert_refusal(message: str | None, *, settling: bool) -> Refusal:
    """A refusal for a token revert, mapped from FiatTokenV2's wording."""
    reason = reason_for_revert(message)
    if reason is not None:
        return Refusal(reason, _REVERT_MESSAGES[reason])
    # The token at `asset` may be anyone's contract: its revert text is outside text.
    why = f": {shown(message, 200)}" if message else " without a reason"
    if settling:
        return Refusal(TRANSACTION_FAILED, f"The settlement transaction reverted{why}.")
    return Refusal(SIMULATION_FAILED, f"Simulating the transfer reverted{why}.")


def _invalid(refusal: Refusal, payer: str) -> VerifyResponse:
    return VerifyResponse(
        is_valid=False, invalid_reason=refusal.reason, invalid_message=refusal.message, payer=payer
    )


def _failed(refusal: Refusal, network: str, payer: str) -> SettleResponse:
    return SettleResponse(
        success=False,
        network=network,
        payer=payer,
        error_reason=refusal.reason,
        error_message=refusal.message,
    )
