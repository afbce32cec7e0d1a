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
from collections.abc import Callable, Iterable

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from ..core.erc6492 import Erc6492Signature
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
from ..schemes.backends import backend_failures
from .base import OnChain
from .checks import (
    NONCE_ALREADY_USED,
    TRANSFER_EVENT_MISMATCH,
    UNDEPLOYED_SMART_WALLET,
    CheckedPayment,
    Refusal,
    check_exact_payment,
    reported_network,
)
from .contracts.eip3009 import transfer_with_authorization_calldata
from .lookup import lookup_authorization, payment_problem
from .mining import RECEIPT_POLL_SECONDS, MinedSender, receipt_poll_delays
from .relayer import Relayer
from .simulation import WALLET_DEPLOY_GAS_LIMIT, ChainVerifier, deploy_failed, revert_refusal
from .worker import ChainWorker

__all__ = ["RECEIPT_POLL_SECONDS", "LocalSettlement", "receipt_poll_delays"]

logger = logging.getLogger(__name__)


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
        self._worker = ChainWorker(network.label, concurrent=self._relayer.concurrent, lock=lock)
        self._limiter = self._worker.limiter
        self._verifier = ChainVerifier(
            self._relayer, network, gas_limit=gas_limit, erc6492_factories=erc6492_factories
        )
        self._sender = MinedSender(
            self._relayer, self._worker, receipt_timeout=receipt_timeout, poll_latency=poll_latency
        )
        self._poll_latency = poll_latency  # the first receipt poll's wait (what the sender was given)
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

    @property
    def erc6492_factories(self) -> frozenset[str]:
        """Factories (lowercase) an ERC-6492 signature may name; see the class docstring."""
        return self._verifier.erc6492_factories

    @erc6492_factories.setter
    def erc6492_factories(self, factories: frozenset[str]) -> None:
        self._verifier.erc6492_factories = factories

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
        refusal = await self._worker.call(self._verifier.verify, checked, requirements.asset)
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
        gas = self._verifier.gas_for(checked)
        sent = await self._sender.send_mined(
            asset, calldata, gas=gas, before_retrying="check the authorization's state"
        )
        if sent.tx_hash is None or sent.receipt is None:
            # Some nodes refuse a reverting transaction at send time instead of mining it.
            return _failed(revert_refusal(sent.revert, settling=True), network, checked.payer)
        tx_hash, receipt = sent.tx_hash.to_0x_hex(), sent.receipt
        if receipt["status"] != 1:
            # Replaying on the state after the transaction's block reproduces its revert, including
            # one caused by an earlier transaction in the same block (a concurrent duplicate).
            replay = functools.partial(
                self._relayer.simulate, asset, calldata, gas=gas, block=receipt["blockNumber"]
            )
            message = await self._worker.call(replay)
            refusal = revert_refusal(message, settling=True)
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
        if await self._worker.call(self._relayer.has_code, payer):
            return None  # deployed since the payer signed (by them or by an earlier attempt)
        refusal = self._verifier.factory_refusal(deployment)
        if refusal is not None:
            return refusal
        sent = await self._sender.send_mined(
            deployment.factory,
            deployment.factory_calldata,
            gas=WALLET_DEPLOY_GAS_LIMIT,
            before_retrying=f"check whether {payer} has code",
        )
        if sent.tx_hash is None or sent.receipt is None:
            return Refusal(UNDEPLOYED_SMART_WALLET, deploy_failed(deployment, sent.revert))
        tx_hash, receipt = sent.tx_hash.to_0x_hex(), sent.receipt
        if receipt["status"] != 1 or not await self._worker.call(self._relayer.has_code, payer):
            return Refusal(
                UNDEPLOYED_SMART_WALLET, f"{deploy_failed(deployment, None)} (transaction {tx_hash})"
            )
        logger.info("deployed the wallet %s through factory %s in %s", payer, deployment.factory, tx_hash)
        return None

    # ------------------------------------------------------------------ reconciliation

    async def read_contract(self, to: str, calldata: bytes) -> bytes:
        """`eth_call` of a view on contract `to`; `SettlementError` if the node failed or it reverted."""
        with backend_failures("read the chain"):
            return await self._worker.call(functools.partial(self._relayer.call, to, calldata))

    async def transact(self, to: str, calldata: bytes, *, gas: int, what: str) -> tuple[str, str | None]:
        """Send `calldata` to `to` from the gas account, mined: its hash, and the revert message when
        it failed ("" when none; no hash when refused at send time). `SettlementError`: the node
        failed, or it was not mined in time (it may be later)."""
        sent = await self._sender.send_mined(
            to, calldata, gas=gas, before_retrying=f"check whether {what} landed"
        )
        if sent.tx_hash is None or sent.receipt is None:
            return "", sent.revert or ""
        tx_hash = sent.tx_hash.to_0x_hex()
        if sent.receipt["status"] == 1:
            return tx_hash, None
        at = sent.receipt["blockNumber"]
        replay = functools.partial(self._relayer.simulate, to, calldata, gas=gas, block=at)
        return tx_hash, (await self._worker.call(replay)) or ""

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
        return await self._worker.call(find)

    def _require_our_network(self, requirements: PaymentRequirements) -> None:
        if requirements.network != self._network.caip2:
            raise SettlementError(
                f"this settlement backend serves {self._network.caip2}, not {shown(requirements.network)}; "
                "configure a backend for that network"
            )


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
