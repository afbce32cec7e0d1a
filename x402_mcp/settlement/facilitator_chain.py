"""What a facilitator's settlement looks like on chain, read from our own `rpc_url`.

Every successful settle answer is checked against the chain before the tool runs
(`confirmed`); a settle whose answer was lost is looked for on it (`reconcile`);
and `lookup` answers reconciliation as local settlement does. Without an `rpc_url`
the facilitator's word is all there is.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from web3 import Web3

from ..core.networks import Network, SolanaNetwork, resolve_network
from ..core.text import shown
from ..core.wire import (
    AnyPaymentPayload,
    PaymentPayload,
    PaymentPayloadV1,
    PaymentRequirements,
    ReceivedPayment,
    SettleResponse,
)
from ..errors import ConfigurationError, SettlementError
from .base import OnChain
from .checks import NONCE_ALREADY_USED, reported_network
from .lookup import is_tx_hash, lookup_authorization, settlement_problem
from .reader import ChainReader

__all__ = ["FacilitatorChain"]

logger = logging.getLogger("x402_mcp.settlement.facilitator")

T = TypeVar("T")


class FacilitatorChain:
    """Reads the chain a facilitator at `url` settles on, through `rpc_url` (None: it cannot).

    `network` is the configured one (None: each requirement's own); `timeout` bounds
    each node request; `reconcile_seconds` is how long to watch for a settlement.
    """

    def __init__(
        self,
        url: str,
        rpc_url: str | None,
        network: Network | SolanaNetwork | None,
        *,
        timeout: float,
        reconcile_seconds: float,
    ) -> None:
        self.url = url
        self.rpc_url = rpc_url
        self.network = network
        self._timeout = timeout
        self._reconcile_seconds = reconcile_seconds
        # Chain readers of `rpc_url`, by network; one worker thread at a time uses them.
        self._readers: dict[str, ChainReader] = {}
        self._lookup_limiter = anyio.CapacityLimiter(1)

    async def confirmed(
        self, payload: ReceivedPayment, requirements: PaymentRequirements, answer: SettleResponse
    ) -> SettleResponse:
        """A successful `answer`, once `rpc_url`'s chain bears it out (see `settlement_problem`).

        Waits up to `reconcile_seconds` for the transaction to appear (the node
        may lag the facilitator's). The answer returned states the amount and
        payer the chain showed, not the facilitator's words.

        Raises:
            SettlementError: the chain does not show that transaction paying this
                authorization; nothing may run on it (reconciliation decides later).
        """
        if not answer.success or not isinstance(payload, PaymentPayload | PaymentPayloadV1):
            return answer
        if not is_tx_hash(answer.transaction):
            # Recorded in the ledger and shown to people: never an arbitrary string.
            raise SettlementError(
                f"the facilitator at {self.url} reported the payment settled, but named no transaction "
                f"hash ({shown(repr(answer.transaction), 80)}); the payment is kept pending until the "
                "chain shows what happened"
            )
        reader = self.reader(requirements)
        if reader is None:
            return answer
        check = functools.partial(settlement_problem, reader, payload, requirements, answer.transaction)
        deadline = anyio.current_time() + self._reconcile_seconds
        delay = 0.05
        while (problem := await self._read_chain(reader, check)) is not None:
            if not problem.pending or anyio.current_time() + delay > deadline:
                logger.error(
                    "the facilitator at %s claimed a settlement the chain disproves: %s",
                    self.url,
                    problem.message,
                )
                raise SettlementError(
                    f"the facilitator at {self.url} reported the payment settled, but the chain disagrees: "
                    f"{problem.message}; the payment is kept pending until the chain shows what happened"
                )
            await anyio.sleep(delay)
            delay = min(delay * 2, 1.0)
        return answer.model_copy(
            update={"amount": requirements.amount, "payer": payload.payload.authorization.from_}
        )

    async def lookup(
        self, payload: ReceivedPayment, requirements: PaymentRequirements, *, lookback_blocks: int
    ) -> OnChain:
        """`FacilitatorSettlement.lookup`, searching the last `lookback_blocks` blocks."""
        if not isinstance(payload, PaymentPayload | PaymentPayloadV1):
            return OnChain("unknown")
        reader = self.reader(requirements)
        if reader is None:
            return OnChain("unknown")
        find = functools.partial(
            lookup_authorization, reader, payload, requirements, lookback_blocks=lookback_blocks
        )
        return await self._read_chain(reader, find)

    def reader(self, requirements: PaymentRequirements) -> ChainReader | None:
        """A reader of `rpc_url` for `requirements`' network; None when it cannot read that chain.

        Raises:
            SettlementError: `requirements` are for another network than the configured one.
        """
        if self.rpc_url is None:
            return None
        network = self.network
        if network is None:
            try:
                network = resolve_network(requirements.network)
            except ConfigurationError:
                return None
        if isinstance(network, SolanaNetwork):
            return None
        if requirements.network != network.caip2:
            raise SettlementError(
                f"this facilitator backend reads {network.caip2}, not {shown(requirements.network)}; "
                "configure a backend for that network"
            )
        reader = self._readers.get(network.caip2)
        if reader is None:
            provider = Web3.HTTPProvider(self.rpc_url, request_kwargs={"timeout": self._timeout})
            reader = self._readers[network.caip2] = ChainReader(Web3(provider), network)
        return reader

    async def _read_chain(self, reader: ChainReader, read: Callable[[], T]) -> T:
        """`read()` of `reader` in a worker thread, one at a time; a node failure becomes SettlementError."""
        try:
            return await anyio.to_thread.run_sync(read, limiter=self._lookup_limiter)
        except SettlementError:
            raise
        except Exception as exc:
            # Generic on purpose: RPC errors often embed the node URL, and hosted URLs carry API keys.
            raise SettlementError(
                f"the {reader.network.label} node failed during a lookup ({type(exc).__name__})"
            ) from exc

    async def reconcile(
        self, payload: ReceivedPayment, requirements: PaymentRequirements, *, lookback_blocks: int
    ) -> SettleResponse | None:
        """The settlement, if `lookup` shows the authorization used within the watch window."""
        if self.rpc_url is None or not isinstance(payload, PaymentPayload | PaymentPayloadV1):
            return None  # lookup() can only answer "unknown"
        deadline = anyio.current_time() + self._reconcile_seconds
        delay = 0.05
        while True:
            try:
                found = await self.lookup(payload, requirements, lookback_blocks=lookback_blocks)
            except SettlementError as exc:
                logger.warning("could not look the authorization up on the chain: %s", exc)
            else:
                if found.status == "unknown":
                    return None  # it cannot change while we watch
                if found.status != "unused":
                    return _settle_response(found, payload, requirements)
            if anyio.current_time() + delay > deadline:
                return None
            await anyio.sleep(delay)
            delay = min(delay * 2, 1.0)


def _settle_response(
    found: OnChain, payload: AnyPaymentPayload, requirements: PaymentRequirements
) -> SettleResponse | None:
    """What the lost settle answer must have said, as the chain shows it; None if it cannot tell."""
    network = reported_network(payload, requirements)
    payer = payload.payload.authorization.from_
    if found.status == "settled" and found.tx_hash is not None and found.amount is not None:
        logger.warning("settle answer lost; the chain shows it settled in %s", found.tx_hash)
        return SettleResponse(
            success=True, transaction=found.tx_hash, network=network, payer=payer, amount=str(found.amount)
        )
    if found.status == "canceled":
        return SettleResponse(
            success=False,
            network=network,
            payer=payer,
            error_reason=NONCE_ALREADY_USED,
            error_message="The payer canceled this authorization; sign a new one.",
        )
    logger.warning("settle answer lost; the authorization was used, but no transaction paying it was found")
    return None
