"""Settling the budget's open payments from the chain, never from a server's word.

A payment the server said it did not take (or whose call broke off) keeps counting
against the budget: the server holds a signed authorization and may have moved the
money anyway. Only the chain can free it: once a block at least
`REORG_MARGIN_SECONDS` past the authorization's `validBefore` shows
`authorizationState(from, nonce)` false, nobody can ever use it, and the payment is
released. One the chain shows used is marked spent, whatever the server said.
Without a chain to read, such payments stay counted (`x402-mcp spend --reconcile
--rpc-url …` frees them later).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import anyio.to_thread
from web3 import Web3
from web3.types import TxParams

from ..errors import ConfigurationError
from ..settlement.contracts.eip3009 import authorization_state_calldata, decode_bool
from .spend_records import Spend
from .store import SpendStore

logger = logging.getLogger("x402_mcp.client")

REORG_MARGIN_SECONDS = 60
"""How far past `validBefore` the head must be: blocks older than that are not reorganised away."""

Verdict = Literal["used", "expired", "open"]


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What `reconcile` did: payments released (expired unused) and found used on chain."""

    released: int = 0
    used: int = 0
    still_open: int = 0


class AuthorizationChain:
    """Reads one EVM chain (through `source`, a JSON-RPC URL or a `Web3`) for what became of
    the authorizations the client signed. It only reads; it needs no key."""

    def __init__(self, source: str | Web3, *, timeout: float = 10.0) -> None:
        if isinstance(source, Web3):
            self._w3 = source
        elif isinstance(source, str):
            parts = urlsplit(source)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigurationError(
                    "the chain to check payments on must be an http(s) JSON-RPC URL with a host"
                )
            self._w3 = Web3(Web3.HTTPProvider(source, request_kwargs={"timeout": timeout}))
        else:
            raise ConfigurationError("chain must be a JSON-RPC URL or a Web3")
        self._network: str | None = None

    def network(self) -> str:
        """The chain's CAIP-2 name, asked of the node once (blocking)."""
        if self._network is None:
            self._network = f"eip155:{int(self._w3.eth.chain_id)}"
        return self._network

    def verdict(self, spend: Spend) -> Verdict:
        """Whether `spend`'s authorization was used, has expired unused for good, or may still be
        used (blocking). Both answers come from one block, so they agree."""
        assert spend.payer is not None and spend.nonce is not None and spend.valid_before is not None
        head = self._w3.eth.get_block("latest")
        number, timestamp = int(head["number"]), int(head["timestamp"])
        request: TxParams = {
            "to": Web3.to_checksum_address(spend.asset),
            "data": authorization_state_calldata(spend.payer, spend.nonce),
        }
        if decode_bool(bytes(self._w3.eth.call(request, block_identifier=number))):
            return "used"
        if timestamp >= spend.valid_before + REORG_MARGIN_SECONDS:
            return "expired"
        return "open"


async def reconcile(store: SpendStore, budget: str, chain: AuthorizationChain, *, now: float) -> Reconciled:
    """Settle `budget`'s open payments on `chain`'s network from what the chain shows.

    A node that fails leaves everything counted (logged, not raised): the budget
    can only look fuller than it is.
    """
    released = used = still_open = 0
    try:
        network = await anyio.to_thread.run_sync(chain.network)
        for spend in await store.unsettled(budget):
            if spend.network != network:
                still_open += 1
                continue
            verdict = await anyio.to_thread.run_sync(chain.verdict, spend)
            if verdict == "used":
                await store.mark_spent(
                    spend.id, tx_hash=None, now=now, detail="its authorization was used on chain"
                )
                used += 1
            elif verdict == "expired":
                await store.release(spend.id, "its authorization expired unused (read on chain)", now=now)
                released += 1
            else:
                still_open += 1
    except Exception:
        logger.warning("could not read the chain to settle open payments; they stay counted", exc_info=True)
    return Reconciled(released, used, still_open)
