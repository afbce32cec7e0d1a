"""Configuration from `X402_*` environment variables, and the defaults `Payments` falls back on."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, Protocol

from ..core.addresses import parse_address, parse_payee
from ..core.links import DEFAULT_PAGE_PORT, public_base, service_url
from ..core.money import USDC_DECIMALS
from ..core.networks import Asset, Network, resolve_network
from ..core.text import shown
from ..core.wire import parse_uint
from ..errors import ConfigurationError
from ..settlement.base import Settlement

_ASSET_DETAILS = ("X402_ASSET_NAME", "X402_ASSET_VERSION", "X402_ASSET_DECIMALS")
_MAX_DOMAIN_TEXT = 64  # EIP-712 names and versions are short words ("USD Coin", "2")
_MAX_DECIMALS = 36
_PRIVATE_KEY = re.compile(r"(0x)?[0-9a-fA-F]{64}")

PRODUCTION_SETTINGS = (
    "X402_PAY_TO",
    "X402_NETWORK",
    "X402_RPC_URL",
    "X402_SETTLEMENT_KEY",
    "X402_FACILITATOR_URL",
    "X402_FACILITATOR_TOKEN",
    "X402_ASSET",
    *_ASSET_DETAILS,
    "X402_ERC6492_FACTORIES",
    "X402_SOLANA_PAY_TO",
    "X402_SOLANA_NETWORK",
    "X402_SOLANA_FACILITATOR_URL",
    "CDP_API_KEY_ID",
    "CDP_API_KEY_SECRET",
)
"""Settings that only mean something for real money: with any of them set, `X402_SETTLEMENT`
must be chosen, so a forgotten variable never turns a deployment into one selling for test money."""


def _switch(env: Mapping[str, str], name: str) -> bool:
    """An on/off setting: `on`, `true`, `1` or `yes`; `off`, `false`, `0`, `no` or unset."""
    value = env.get(name, "").strip().lower()
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("", "off", "false", "0", "no"):
        return False
    raise ConfigurationError(f"{name}={shown(repr(value), 40)} is neither on nor off")


class DevelopmentChain(Protocol):
    """An embedded test chain `X402_SETTLEMENT` can name (`x402_mcp.chains.devchain.DevChain`)."""

    @property
    def network(self) -> str:
        """Its CAIP-2 id, e.g. `eip155:1337`."""
        ...

    def settlement(self) -> Settlement: ...


DEVELOPMENT_CHAINS = "x402_mcp.development_chains"
"""The entry-point group that names the development chains (this package's pyproject declares
`devchain`), so the gate finds one by its name without importing the development code."""

_development_chains: dict[str, Callable[[], DevelopmentChain]] = {}


def register_development_chain(kind: str, make: Callable[[], DevelopmentChain]) -> None:
    """Let `X402_SETTLEMENT=<kind>` build a chain with `make` (`x402_mcp.chains` does, on import)."""
    _development_chains[kind] = make


def development_chain(kind: str) -> Callable[[], DevelopmentChain]:
    """What builds the development chain `X402_SETTLEMENT=<kind>` names: registered, or else
    the installed entry point of that name (which registers it as it loads).

    Raises:
        ConfigurationError: no development chain of that name is installed.
    """
    if kind not in _development_chains:
        for plug_in in entry_points(group=DEVELOPMENT_CHAINS, name=kind):
            _development_chains.setdefault(kind, plug_in.load())
    make = _development_chains.get(kind)
    if make is None:
        raise ConfigurationError(
            f"X402_SETTLEMENT={kind} needs the development chain, which is not installed with this "
            "x402-mcp (its package metadata names no such chain): reinstall x402-mcp, or import "
            "x402_mcp.devchain before Payments.from_env()"
        )
    return make


def settings_from_env(env: Mapping[str, str]) -> tuple[dict[str, Any], Any]:
    """`Payments` keyword arguments from the environment, and the DevChain if one was made.

    - `X402_SETTLEMENT`: `devchain` (an embedded chain in this process, offline,
      with the page's demo wallet: test money; the default only when none of
      `PRODUCTION_SETTINGS` is set, which is a `ConfigurationError` otherwise),
      `local` (settle on the chain at `X402_RPC_URL`, paying gas with
      `X402_SETTLEMENT_KEY`) or `facilitator`
      (through the facilitator at `X402_FACILITATOR_URL`, with the bearer token
      in `X402_FACILITATOR_TOKEN` if set; `X402_RPC_URL`, if set, checks every
      settlement it reports against the chain).
    - `X402_PAY_TO`: the payee (default on the devchain: a fresh address).
    - `X402_NETWORK`: e.g. `base-sepolia` or `eip155:31337` (ignored on the devchain).
    - `X402_ASSET`: the token's address, when it is not the network's known USDC
      (required on a chain without one, such as `x402-mcp devnet`), with its EIP-712
      domain `X402_ASSET_NAME` (required with it) and `X402_ASSET_VERSION` (default
      `2`), and `X402_ASSET_DECIMALS` (default 6).
    - `X402_ERC6492_FACTORIES`: with `local`, smart-wallet factories (comma-separated
      addresses) this server may call to deploy a payer's wallet, beside the defaults.
    - `X402_LEDGER_URL`, `X402_PUBLIC_URL`, `X402_PAGE_PORT`.
    - `X402_BATCH_SETTLEMENT`: `on` to also offer batch-settlement (channels and
      vouchers; needs `devchain` or `local`), its receiver authorizer's key in
      `X402_BATCH_AUTHORIZER_KEY` (not needed on a development chain).
    - `X402_SOLANA_PAY_TO`: also accept USDC on Solana, paid to this wallet, on
      `X402_SOLANA_NETWORK` (default `solana-devnet`) through the facilitator at
      `X402_SOLANA_FACILITATOR_URL` (default: the public one, devnet only).

    Raises:
        ConfigurationError: a missing or invalid setting, named; a secret's value
            (`X402_SETTLEMENT_KEY`, and `X402_RPC_URL`, which may carry an API key)
            is never quoted.
    """

    kind = _settlement_kind(env)
    public_url = env.get("X402_PUBLIC_URL", "").strip()
    page_port_text = env.get("X402_PAGE_PORT", str(DEFAULT_PAGE_PORT)).strip()
    try:
        page_port = parse_uint(page_port_text, "X402_PAGE_PORT")  # not isdigit(): it takes "²"
    except ValueError:
        page_port = -1
    if not 0 <= page_port <= 65535:
        raise ConfigurationError(f"X402_PAGE_PORT={shown(repr(page_port_text))} is not a port number")
    common: dict[str, Any] = {
        "ledger": _ledger_from_env(env),
        "public_url": public_base(public_url, "X402_PUBLIC_URL") if public_url else None,
        "page_port": page_port,
        "also_accept": _solana_from_env(env),
        "batch_settlement": _switch(env, "X402_BATCH_SETTLEMENT"),
    }
    asset = _asset_from_env(env)
    if kind == "devchain":
        if asset is not None:
            raise ConfigurationError(
                "X402_ASSET needs X402_SETTLEMENT=local: the devchain deploys its own USDC"
            )
        from eth_account import Account

        make_chain = development_chain(kind)
        pay_to = _payee_from_env(env, None, None)
        chain = make_chain()
        settings = {"pay_to": pay_to or Account.create().address, "network": chain.network}
        return {**settings, "settlement": chain.settlement(), **common}, chain
    if kind == "local":
        required = ("X402_RPC_URL", "X402_SETTLEMENT_KEY", "X402_PAY_TO")
        missing = [name for name in required if not env.get(name, "").strip()]
        if missing:
            raise ConfigurationError(f"X402_SETTLEMENT=local needs {', '.join(missing)}")
        network = _network_from_env(env)
        if asset is None and network.usdc is None:
            raise ConfigurationError(
                f"X402_NETWORK={network.caip2} has no known USDC: set X402_ASSET to the token's "
                "address and X402_ASSET_NAME to its EIP-712 name (X402_ASSET_VERSION defaults to 2)"
            )
        pay_to = _payee_from_env(env, asset, network)
        settlement = _local_settlement(env, network)
        settings = {"pay_to": pay_to, "network": network, "settlement": settlement}
        if asset is not None:
            settings["asset"] = asset
        return {**settings, **common}, None
    if kind == "facilitator":
        from ..settlement.facilitator import FacilitatorSettlement

        missing = [name for name in ("X402_FACILITATOR_URL", "X402_PAY_TO") if not env.get(name, "").strip()]
        if missing:
            raise ConfigurationError(f"X402_SETTLEMENT=facilitator needs {', '.join(missing)}")
        network = _network_from_env(env)
        pay_to = _payee_from_env(env, asset, network)
        rpc_url = env.get("X402_RPC_URL", "").strip()
        remote = FacilitatorSettlement(
            service_url(env["X402_FACILITATOR_URL"], what="X402_FACILITATOR_URL"),
            network=network,
            auth=_bearer_token(env),
            rpc_url=service_url(rpc_url, what="X402_RPC_URL") if rpc_url else None,
        )
        settings = {"pay_to": pay_to, "network": network, "settlement": remote}
        if asset is not None:
            settings["asset"] = asset
        return {**settings, **common}, None
    raise ConfigurationError(f"X402_SETTLEMENT={shown(kind)!r} is not one of: devchain, local, facilitator")


def _settlement_kind(env: Mapping[str, str]) -> str:
    """`X402_SETTLEMENT`, or `devchain` when it is unset and no production setting is present.

    Raises:
        ConfigurationError: a production setting is set without `X402_SETTLEMENT`
            (naming the variables, never their values).
    """
    chosen = env.get("X402_SETTLEMENT", "").strip().lower()
    if chosen:
        return chosen
    present = [name for name in PRODUCTION_SETTINGS if env.get(name, "").strip()]
    if present:
        raise ConfigurationError(
            f"X402_SETTLEMENT is not set, but {', '.join(present)} {'is' if len(present) == 1 else 'are'} "
            "set (settings for real money), so the embedded dev chain is not used. Set "
            "X402_SETTLEMENT=local (settle on "
            "X402_RPC_URL with X402_SETTLEMENT_KEY) or X402_SETTLEMENT=facilitator (through "
            "X402_FACILITATOR_URL); or X402_SETTLEMENT=devchain to test with the embedded chain's test money"
        )
    return "devchain"


def _address_from_env(env: Mapping[str, str], variable: str) -> str | None:
    value = env.get(variable, "").strip()
    return parse_address(value, what=variable) if value else None


def _payee_from_env(env: Mapping[str, str], asset: Asset | None, network: Network | None) -> str | None:
    """`X402_PAY_TO`, which may not be the token contract (`X402_ASSET` or the network's USDC)."""
    value = env.get("X402_PAY_TO", "").strip()
    if not value:
        return None
    token = asset or (network.usdc if network is not None else None)
    return parse_payee(value, what="X402_PAY_TO", asset=token.address if token else None)


def _ledger_from_env(env: Mapping[str, str]) -> Any:
    """The ledger `X402_LEDGER_URL` names (made, not opened), or None for the default."""
    from ..ledger import open_ledger

    url = env.get("X402_LEDGER_URL", "").strip()
    if not url:
        return None
    try:
        return open_ledger(url)
    except ConfigurationError as exc:
        # open_ledger never quotes more than the scheme: the rest may hold a password.
        raise ConfigurationError(f"X402_LEDGER_URL: {exc}") from None


def _network_from_env(env: Mapping[str, str]) -> Network:
    name = env.get("X402_NETWORK", "").strip() or "base-sepolia"
    try:
        return resolve_network(name)
    except ConfigurationError:
        raise ConfigurationError(
            f"X402_NETWORK={shown(name)!r} is not a network: use base, base-sepolia or eip155:<chain id>"
        ) from None


def _asset_from_env(env: Mapping[str, str]) -> Asset | None:
    """The token of `X402_ASSET` and its EIP-712 domain, or None when it is not set."""
    address = _address_from_env(env, "X402_ASSET")
    details = {name: env.get(name, "").strip() for name in _ASSET_DETAILS}
    if address is None:
        stray = [name for name, value in details.items() if value]
        if stray:
            raise ConfigurationError(
                f"{', '.join(stray)} describe a token, but X402_ASSET (its address) is not set"
            )
        return None
    name = details["X402_ASSET_NAME"]
    if not name:
        raise ConfigurationError(
            "X402_ASSET needs X402_ASSET_NAME, the token's EIP-712 domain name (our USDC's is 'USD Coin')"
        )
    version = details["X402_ASSET_VERSION"] or "2"
    for variable, value in (("X402_ASSET_NAME", name), ("X402_ASSET_VERSION", version)):
        if len(value) > _MAX_DOMAIN_TEXT or not value.isprintable():
            raise ConfigurationError(
                f"{variable}={shown(value)!r} must be printable text of at most {_MAX_DOMAIN_TEXT} characters"
            )
    decimals_text = details["X402_ASSET_DECIMALS"] or str(USDC_DECIMALS)
    try:
        decimals = parse_uint(decimals_text, "X402_ASSET_DECIMALS")
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    if decimals > _MAX_DECIMALS:
        raise ConfigurationError(f"X402_ASSET_DECIMALS={decimals} is more than {_MAX_DECIMALS}")
    return Asset(address, name=name, version=version, decimals=decimals)


def _local_settlement(env: Mapping[str, str], network: Network) -> Settlement:
    from ..settlement.local import LocalSettlement

    rpc_url = service_url(env["X402_RPC_URL"], what="X402_RPC_URL")
    key = env["X402_SETTLEMENT_KEY"].strip()
    if _PRIVATE_KEY.fullmatch(key) is None:
        raise ConfigurationError("X402_SETTLEMENT_KEY must be a private key: 0x followed by 64 hex digits")
    try:
        return LocalSettlement.from_rpc(
            rpc_url, key, network=network, erc6492_factories=_factories_from_env(env)
        )
    except ConfigurationError:
        raise
    except ValueError:
        # eth-account's message may quote the key: say only which setting is wrong.
        raise ConfigurationError("X402_SETTLEMENT_KEY is not a valid secp256k1 private key") from None


def _factories_from_env(env: Mapping[str, str]) -> list[str]:
    """`X402_ERC6492_FACTORIES`: smart-wallet factories allowed beside the defaults (comma-separated)."""
    text = env.get("X402_ERC6492_FACTORIES", "").strip()
    return [parse_address(item, what="X402_ERC6492_FACTORIES") for item in text.split(",") if item.strip()]


def _bearer_token(env: Mapping[str, str]) -> Any:
    """`X402_FACILITATOR_TOKEN` as the facilitator's bearer token, or None when unset."""
    from ..settlement.facilitator import BearerToken

    try:
        return BearerToken.from_env(env)
    except ConfigurationError:
        # Its own message says "a bearer token"; name the variable, never the value.
        raise ConfigurationError(
            "X402_FACILITATOR_TOKEN must be printable ASCII without spaces (it travels in an HTTP header)"
        ) from None


def _solana_from_env(env: Mapping[str, str]) -> list[Any]:
    pay_to = env.get("X402_SOLANA_PAY_TO", "").strip()
    if not pay_to:
        return []
    from ..core.networks import is_solana_address, resolve_solana_network
    from ..settlement.facilitator import FacilitatorSettlement
    from ..settlement.solana import Solana

    name = env.get("X402_SOLANA_NETWORK", "").strip() or "solana-devnet"
    try:
        network = resolve_solana_network(name)
    except ConfigurationError as exc:
        raise ConfigurationError(f"X402_SOLANA_NETWORK: {exc}") from None
    if not is_solana_address(pay_to):
        raise ConfigurationError(
            f"X402_SOLANA_PAY_TO={shown(pay_to)!r} is not a Solana address (base58 of 32 bytes): "
            "copy the wallet's address again"
        )
    url = env.get("X402_SOLANA_FACILITATOR_URL", "").strip()
    if url:
        url = service_url(url, what="X402_SOLANA_FACILITATOR_URL")
    settlement = FacilitatorSettlement(url, network=network) if url else None
    return [Solana(pay_to, network=network, settlement=settlement)]


def default_ledger_url(
    server: str | None = None, *, pay_to: str = "", network: str = "", asset: str = ""
) -> str:
    """`$X402_LEDGER_URL`, else this server's own SQLite file in the user's data directory
    (`ledgers/<name>-<digest of name, payee, network, asset>.sqlite`; see
    `x402_mcp.ledger.location`): unrelated servers never share a default ledger."""
    configured = os.environ.get("X402_LEDGER_URL")
    if configured:
        return configured
    from ..ledger.location import server_ledger_path

    path = server_ledger_path(server, pay_to=pay_to, network=network, asset=asset)
    return f"sqlite://{path}"


def network_known_to(settlement: Settlement, network: Network) -> Network:
    # Local backends (the dev chain) know their chain's name and the token they settle in.
    known = getattr(settlement, "network", None)
    if isinstance(known, Network) and known.caip2 == network.caip2 and network.usdc is None:
        return known
    return network
