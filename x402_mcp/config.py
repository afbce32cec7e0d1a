"""Configuration from `X402_*` environment variables, and the defaults `Payments` falls back on."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigurationError
from .networks import Network
from .serving import DEFAULT_PAGE_PORT
from .settlement.base import Settlement
from .text import shown
from .wire import parse_uint


def settings_from_env(env: Mapping[str, str]) -> tuple[dict[str, Any], Any]:
    """`Payments` keyword arguments from the environment, and the DevChain if one was made.

    - `X402_SETTLEMENT`: `devchain` (default: an embedded chain in this process,
      offline, with the page's demo wallet), `local` (settle on the chain at
      `X402_RPC_URL`, paying gas with `X402_SETTLEMENT_KEY`) or `facilitator`
      (through the facilitator at `X402_FACILITATOR_URL`, with the bearer token
      in `X402_FACILITATOR_TOKEN` if set; `X402_RPC_URL`, if set, checks every
      settlement it reports against the chain).
    - `X402_PAY_TO`: the payee (default on the devchain: a fresh address).
    - `X402_NETWORK`: e.g. `base-sepolia` (ignored on the devchain).
    - `X402_LEDGER_URL`, `X402_PUBLIC_URL`, `X402_PAGE_PORT`.
    - `X402_SOLANA_PAY_TO`: also accept USDC on Solana, paid to this wallet, on
      `X402_SOLANA_NETWORK` (default `solana-devnet`) through the facilitator at
      `X402_SOLANA_FACILITATOR_URL` (default: the public one, devnet only).

    Raises:
        ConfigurationError: a missing or invalid setting, named.
    """

    kind = env.get("X402_SETTLEMENT", "devchain").strip().lower()
    pay_to = env.get("X402_PAY_TO", "").strip()
    page_port_text = env.get("X402_PAGE_PORT", str(DEFAULT_PAGE_PORT)).strip()
    try:
        page_port = parse_uint(page_port_text, "X402_PAGE_PORT")  # not isdigit(): it takes "²"
    except ValueError:
        page_port = -1
    if not 0 <= page_port <= 65535:
        raise ConfigurationError(f"X402_PAGE_PORT={shown(repr(page_port_text))} is not a port number")
    common: dict[str, Any] = {
        "ledger": env.get("X402_LEDGER_URL") or None,
        "public_url": env.get("X402_PUBLIC_URL") or None,
        "page_port": page_port,
        "also_accept": _solana_from_env(env),
    }
    if kind == "devchain":
        from eth_account import Account

        from .devchain import DevChain

        chain = DevChain()
        settings = {"pay_to": pay_to or Account.create().address, "network": chain.network}
        return {**settings, "settlement": chain.settlement(), **common}, chain
    if kind == "local":
        from .settlement.local import LocalSettlement

        required = ("X402_RPC_URL", "X402_SETTLEMENT_KEY", "X402_PAY_TO")
        missing = [name for name in required if not env.get(name)]
        if missing:
            raise ConfigurationError(f"X402_SETTLEMENT=local needs {', '.join(missing)}")
        network = env.get("X402_NETWORK", "base-sepolia")
        settlement = LocalSettlement.from_rpc(
            env["X402_RPC_URL"], env["X402_SETTLEMENT_KEY"], network=network
        )
        return {"pay_to": pay_to, "network": network, "settlement": settlement, **common}, None
    if kind == "facilitator":
        from .settlement.facilitator import BearerToken, FacilitatorSettlement

        missing = [name for name in ("X402_FACILITATOR_URL", "X402_PAY_TO") if not env.get(name)]
        if missing:
            raise ConfigurationError(f"X402_SETTLEMENT=facilitator needs {', '.join(missing)}")
        network = env.get("X402_NETWORK", "base-sepolia")
        remote = FacilitatorSettlement(
            env["X402_FACILITATOR_URL"].strip(),
            network=network,
            auth=BearerToken.from_env(env),
            rpc_url=env.get("X402_RPC_URL") or None,
        )
        return {"pay_to": pay_to, "network": network, "settlement": remote, **common}, None
    raise ConfigurationError(f"X402_SETTLEMENT={kind!r} is not one of: devchain, local, facilitator")


def _solana_from_env(env: Mapping[str, str]) -> list[Any]:
    pay_to = env.get("X402_SOLANA_PAY_TO", "").strip()
    if not pay_to:
        return []
    from .settlement.facilitator import FacilitatorSettlement
    from .solana import Solana

    network = env.get("X402_SOLANA_NETWORK", "").strip() or "solana-devnet"
    url = env.get("X402_SOLANA_FACILITATOR_URL", "").strip()
    settlement = FacilitatorSettlement(url, network=network) if url else None
    return [Solana(pay_to, network=network, settlement=settlement)]


def default_ledger_url() -> str:
    """`$X402_LEDGER_URL`, else an SQLite file in the user's data directory."""
    configured = os.environ.get("X402_LEDGER_URL")
    if configured:
        return configured
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return f"sqlite://{(base / 'x402-mcp' / 'ledger.sqlite').absolute()}"


def network_known_to(settlement: Settlement, network: Network) -> Network:
    # Local backends (the dev chain) know their chain's name and the token they settle in.
    known = getattr(settlement, "network", None)
    if isinstance(known, Network) and known.caip2 == network.caip2 and network.usdc is None:
        return known
    return network
