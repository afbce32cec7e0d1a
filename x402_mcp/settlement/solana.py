"""`Solana(...)`: the exact-SVM scheme with its facilitator chosen, as servers configure it.

The scheme (`schemes.exact.solana.ExactSvm`) is given its backend; choosing the
public facilitator when none is named is a settlement decision, made here.
"""

from __future__ import annotations

from ..core.money import USDC_DECIMALS
from ..core.networks import SolanaNetwork, resolve_solana_network
from ..schemes.backends import SolanaSettlement
from ..schemes.exact.solana import ExactSvm
from .facilitator import default_settlement

__all__ = ["Solana"]


class Solana(ExactSvm):
    """A Solana payee, offered beside the server's EVM network (see `ExactSvm` for the arguments).

    `settlement` defaults to the public facilitator, for devnet only.

    Raises:
        ConfigurationError: as `ExactSvm`, and for a mainnet without an explicit facilitator.
    """

    def __init__(
        self,
        pay_to: str,
        network: str | SolanaNetwork = "solana-devnet",
        *,
        mint: str | None = None,
        decimals: int = USDC_DECIMALS,
        settlement: SolanaSettlement | None = None,
    ) -> None:
        chosen = settlement or default_settlement(resolve_solana_network(network))
        super().__init__(pay_to, network, mint=mint, decimals=decimals, settlement=chosen)
