"""Networks and their USDC: CAIP-2 ids, v1 names, token addresses, EIP-712 domains.

EVM chains are where we verify and settle ourselves. Solana networks are only
named here: a Solana payment is checked and settled by a facilitator (see
`x402_mcp.schemes.exact.solana`), so all we need is its id, its USDC mint and address syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeVar

from ..errors import ConfigurationError
from .addresses import parse_address
from .money import USDC_DECIMALS


@dataclass(frozen=True, slots=True)
class Asset:
    """An EIP-3009 token: where it lives and the EIP-712 domain its signatures use."""

    address: str
    name: str
    version: str = "2"
    decimals: int = USDC_DECIMALS
    symbol: str = "USDC"

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", parse_address(self.address, what="the asset address"))


DEV_CHAIN_IDS = frozenset({1337, 31337})
"""Chain ids of development chains, whose money is test money: 1337 (the embedded DevChain,
Ganache, geth --dev) and 31337 (anvil, Hardhat, `x402-mcp devnet`). No public chain uses them."""


@dataclass(frozen=True, slots=True)
class Network:
    """An EVM chain as x402 names it.

    `caip2` is the v2 identifier (`eip155:84532`); `v1_name` is the v1 one
    (`base-sepolia`) where a known chain has it; `usdc` is the default asset.
    """

    caip2: str
    chain_id: int
    label: str
    v1_name: str | None = None
    usdc: Asset | None = None
    explorer: str | None = None
    testnet: bool = True

    def with_usdc(self, asset: Asset) -> Network:
        return Network(
            self.caip2, self.chain_id, self.label, self.v1_name, asset, self.explorer, self.testnet
        )

    @property
    def is_dev_chain(self) -> bool:
        """Whether this is a development chain (see `DEV_CHAIN_IDS`): its money is test money."""
        return self.chain_id in DEV_CHAIN_IDS

    @property
    def is_known_testnet(self) -> bool:
        """Whether this is a public test network we know (Base Sepolia): its USDC has no value."""
        return any(known.caip2 == self.caip2 and known.testnet for known in KNOWN_NETWORKS)

    @property
    def pays_test_money(self) -> bool:
        """Whether money on this chain is test money: a dev chain or a known public testnet.

        An unknown chain id is not assumed either way, so it is never called test money.
        """
        return self.is_dev_chain or self.is_known_testnet

    def tx_url(self, tx_hash: str) -> str | None:
        return f"{self.explorer}/tx/{tx_hash}" if self.explorer else None


BASE = Network(
    caip2="eip155:8453",
    chain_id=8453,
    label="Base",
    v1_name="base",
    usdc=Asset("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", name="USD Coin"),
    explorer="https://basescan.org",
    testnet=False,
)
BASE_SEPOLIA = Network(
    caip2="eip155:84532",
    chain_id=84532,
    label="Base Sepolia",
    v1_name="base-sepolia",
    usdc=Asset("0x036CbD53842c5426634e7929541eC2318f3dCF7e", name="USDC"),
    explorer="https://sepolia.basescan.org",
)

KNOWN_NETWORKS: tuple[Network, ...] = (BASE, BASE_SEPOLIA)

# v1 names of chains whose USDC we do not configure; they still resolve to a chain id
# so that v1 payloads naming them can be matched (or refused with a clear message).
_V1_CHAIN_IDS = {
    "ethereum": 1,
    "avalanche": 43114,
    "avalanche-fuji": 43113,
    "polygon": 137,
    "polygon-amoy": 80002,
}

_CAIP2_EVM = re.compile(r"^eip155:([1-9][0-9]{0,18})$")


def resolve_network(name: str | Network) -> Network:
    """`"base"`, `"base-sepolia"` or `"eip155:<chainId>"` to a `Network`.

    Raises:
        ConfigurationError: for anything else, naming the forms accepted.
    """
    if isinstance(name, Network):
        return name
    key = name.strip().lower()
    known = _named(key, KNOWN_NETWORKS)
    if known is not None:
        return known
    if key in _V1_CHAIN_IDS:
        chain_id = _V1_CHAIN_IDS[key]
        return Network(f"eip155:{chain_id}", chain_id, key, v1_name=key, testnet=False)
    match = _CAIP2_EVM.match(key)
    if match is None:
        raise ConfigurationError(
            f"unknown network {name!r}: use 'base', 'base-sepolia' or a CAIP-2 id such as 'eip155:84532'"
        )
    chain_id = int(match.group(1))
    return Network(key, chain_id, f"EVM chain {chain_id}")


def same_address(a: str, b: str) -> bool:
    """EVM addresses compare case-insensitively (checksums are only a display form)."""
    return a.lower() == b.lower()


@dataclass(frozen=True, slots=True)
class SolanaNetwork:
    """A Solana cluster as x402 names it (`solana:<genesis hash prefix>`) and its USDC mint."""

    caip2: str
    label: str
    v1_name: str | None = None
    usdc_mint: str | None = None
    testnet: bool = True


SOLANA = SolanaNetwork(
    caip2="solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
    label="Solana",
    v1_name="solana",
    usdc_mint="EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
    testnet=False,
)
SOLANA_DEVNET = SolanaNetwork(
    caip2="solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
    label="Solana Devnet",
    v1_name="solana-devnet",
    usdc_mint="4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
)
KNOWN_SOLANA_NETWORKS: tuple[SolanaNetwork, ...] = (SOLANA, SOLANA_DEVNET)

NetworkT = TypeVar("NetworkT", Network, SolanaNetwork)

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_CAIP2_SOLANA = re.compile(rf"^solana:[{_BASE58}]{{32}}$")


def resolve_solana_network(name: str | SolanaNetwork) -> SolanaNetwork:
    """`"solana"`, `"solana-devnet"` or `"solana:<genesis hash prefix>"` to a `SolanaNetwork`.

    Raises:
        ConfigurationError: for anything else, naming the forms accepted.
    """
    if isinstance(name, SolanaNetwork):
        return name
    key = name.strip()
    known = _named(key, KNOWN_SOLANA_NETWORKS)
    if known is not None:
        return known
    if _CAIP2_SOLANA.match(key):
        return SolanaNetwork(key, f"Solana cluster {key[7:15]}…")
    raise ConfigurationError(
        f"unknown Solana network {name!r}: use 'solana', 'solana-devnet' or a CAIP-2 id such as "
        f"'{SOLANA_DEVNET.caip2}'"
    )


def resolve_any_network(name: str | Network | SolanaNetwork) -> Network | SolanaNetwork:
    """An EVM network or a Solana one, by any of the names `resolve_network` and
    `resolve_solana_network` accept."""
    if isinstance(name, (Network, SolanaNetwork)):
        return name
    if name.strip().lower().startswith("solana"):
        return resolve_solana_network(name)
    return resolve_network(name)


def _named(key: str, networks: tuple[NetworkT, ...]) -> NetworkT | None:
    """The network `key` names (its CAIP-2 id, v1 name or label, in any case), if listed."""
    key = key.lower()
    return next(
        (each for each in networks if key in (each.caip2.lower(), each.v1_name, each.label.lower())), None
    )


def is_solana_address(value: object) -> bool:
    """Whether `value` is a base58 Solana public key (32 bytes)."""
    if not isinstance(value, str) or not 32 <= len(value) <= 44 or any(c not in _BASE58 for c in value):
        return False
    number = 0
    for char in value:
        number = number * 58 + _BASE58.index(char)
    leading_zeros = len(value) - len(value.lstrip("1"))
    return leading_zeros + (number.bit_length() + 7) // 8 == 32
