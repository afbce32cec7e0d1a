"""Offering the `batch-settlement` scheme beside `exact` (`Gate(batch_settlement=...)`).

The server's receiver authorizer is the key that will sign its claims and refunds; only its
address is announced (`extra.receiverAuthorizer`). It comes from `X402_BATCH_AUTHORIZER_KEY`
and is never logged. On a development chain (the embedded DevChain, anvil) a fixed, public
development key stands in when none is set, so a stdio server in the default configuration
needs no secret; anywhere else a missing key is a configuration error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import Hash32
from eth_utils.crypto import keccak

from ..core.networks import Asset, Network
from ..errors import ConfigurationError
from ..ledger.base import Ledger
from ..schemes.batch.chain import ChannelStore
from ..schemes.batch.constants import MIN_WITHDRAW_DELAY_SECONDS
from ..schemes.batch.scheme import DEFAULT_MIN_DEPOSIT_MULTIPLIER, BatchSettlement
from ..settlement.base import Settlement

AUTHORIZER_KEY_VARIABLE = "X402_BATCH_AUTHORIZER_KEY"
DEVELOPMENT_CHAIN_IDS = frozenset({1337, 31337})
"""The embedded DevChain's and anvil's: chains where a public development key is harmless."""
_DEVELOPMENT_KEY = keccak(text="x402-mcp development receiver authorizer (public, never for real money)")


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """How batch-settlement is offered: the channel's withdrawal delay (seconds), the
    `minDeposit` hint (this many calls at the quoted price), and how long a verified voucher
    holds its channel for its call."""

    withdraw_delay: int = MIN_WITHDRAW_DELAY_SECONDS
    min_deposit_multiplier: int = DEFAULT_MIN_DEPOSIT_MULTIPLIER
    hold_seconds: float = 120.0


def receiver_authorizer(network: Network, environ: Mapping[str, str]) -> LocalAccount:
    """The receiver-authorizer key (see the module docstring).

    Raises:
        ConfigurationError: no key is set outside a development chain, or it is not a key.
    """
    key = environ.get(AUTHORIZER_KEY_VARIABLE, "").strip()
    if not key:
        if network.chain_id in DEVELOPMENT_CHAIN_IDS:
            development: LocalAccount = Account.from_key(_DEVELOPMENT_KEY)
            return development
        raise ConfigurationError(
            f"batch_settlement on {network.caip2} needs the receiver authorizer's private key in "
            f"{AUTHORIZER_KEY_VARIABLE} (it signs this server's claims and refunds)"
        )
    try:
        account: LocalAccount = Account.from_key(key)
    except (ValueError, TypeError):
        # The value is a secret: never repeat it.
        raise ConfigurationError(f"{AUTHORIZER_KEY_VARIABLE} is not a 32-byte hex private key") from None
    return account


def batch_scheme(
    option: bool | BatchOptions,
    *,
    network: Network,
    asset: Asset,
    ledger: Ledger,
    settlement: Settlement,
    clock: Callable[[], float],
    environ: Mapping[str, str] | None = None,
) -> BatchSettlement | None:
    """The scheme `Gate(batch_settlement=option)` offers (None: off).

    Raises:
        ConfigurationError: the settlement backend cannot relay deposits (only a local one can,
            for now), the ledger keeps no channels, or the authorizer key is missing.
    """
    if option is False:
        return None
    options = option if isinstance(option, BatchOptions) else BatchOptions()
    from ..settlement.batch_chain import LocalChannelChain
    from ..settlement.local import LocalSettlement

    if not isinstance(settlement, LocalSettlement):
        raise ConfigurationError(
            "batch_settlement needs a local settlement backend (LocalSettlement, or the DevChain's) "
            "to relay channel deposits; a facilitator's batch support is not available yet"
        )
    if not all(hasattr(ledger, name) for name in ("record_charge", "reserve_channel", "open_channel")):
        raise ConfigurationError("batch_settlement needs a ledger that keeps channels (SQLite or PostgreSQL)")
    channels: ChannelStore = ledger  # type: ignore[assignment]  # checked just above
    authorizer = receiver_authorizer(network, os.environ if environ is None else environ)
    return BatchSettlement(
        network,
        asset,
        receiver_authorizer=authorizer.address,
        channels=channels,
        chain=LocalChannelChain(settlement),
        clock=clock,
        withdraw_delay=options.withdraw_delay,
        min_deposit_multiplier=options.min_deposit_multiplier,
        hold_seconds=options.hold_seconds,
        sign_refund=lambda digest: "0x" + bytes(authorizer.unsafe_sign_hash(Hash32(digest)).signature).hex(),
    )
