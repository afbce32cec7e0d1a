"""Reading a paid tool's challenge and choosing what to pay (pure code).

Servers put the x402 `PaymentRequired` in different places; we look, in order,
in `structuredContent` (the x402 MCP transport), in `content[0].text` (the
spec's text-only variant, also wrapped as `{"x402/error": {"data": …}}` or
behind FastMCP's "Error executing tool …:" prefix), and in `_meta["x402/error"]`
(Cloudflare's agents).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from mcp_types import CallToolResult, TextContent
from pydantic import ValidationError

from ..core.challenge import META_ERROR
from ..core.money import from_atomic
from ..core.networks import KNOWN_NETWORKS, Asset
from ..core.text import shown
from ..core.wire import PaymentRequired, PaymentRequirements
from .errors import NoPayableOption


def find_payment_required(result: CallToolResult) -> PaymentRequired | None:
    """The x402 v2 `PaymentRequired` a tool error carries, or None for an ordinary error."""
    for candidate in _candidates(result):
        required = _as_payment_required(candidate)
        if required is not None:
            return required
    return None


def _candidates(result: CallToolResult) -> Iterator[Any]:
    yield result.structured_content
    if result.content and isinstance(result.content[0], TextContent):
        yield _json_in(result.content[0].text)
    yield (result.meta or {}).get(META_ERROR)


_MAX_CHALLENGE_CHARS = 65_536
"""A challenge is a few kilobytes; a text far larger is not read as one."""

_MAX_OPTIONS = 64
"""More payment options than any server offers; a challenge with more is not read."""


def _json_in(text: str) -> Any:
    if len(text) > _MAX_CHALLENGE_CHARS:
        return None
    start = text.find("{")
    if start < 0:
        return None
    try:
        return json.loads(text[start:])
    except json.JSONDecodeError:
        return None


def _as_payment_required(value: Any) -> PaymentRequired | None:
    if isinstance(value, str):
        value = _json_in(value)
    if not isinstance(value, dict):
        return None
    if META_ERROR in value and isinstance(value[META_ERROR], dict):
        value = value[META_ERROR]
    if "accepts" not in value and isinstance(value.get("data"), dict):
        value = value["data"]  # JSON-RPC error shape: {"code": 402, "message": …, "data": …}
    accepts = value.get("accepts")
    if value.get("x402Version") != 2 or not isinstance(accepts, list) or len(accepts) > _MAX_OPTIONS:
        return None
    try:
        return PaymentRequired.model_validate(value)
    except ValidationError:
        return None


def known_usdc() -> tuple[Asset, ...]:
    return tuple(network.usdc for network in KNOWN_NETWORKS if network.usdc is not None)


def choose(
    required: PaymentRequired,
    *,
    assets: Iterable[Asset],
    networks: Sequence[str] | None = None,
    prefer: Sequence[str] = (),
) -> tuple[PaymentRequirements, Asset]:
    """The requirement to pay and its asset: exact EVM, allowed network and asset,
    on the most preferred network, then the cheapest.

    Raises:
        NoPayableOption: saying why each offered requirement was passed over.
    """
    by_address = {asset.address.lower(): asset for asset in assets}
    # USDC's address on a known network is that token there only: elsewhere the same address
    # may hold another contract (other decimals, another token), so it is not dollars.
    home = {n.usdc.address.lower(): n.caip2 for n in KNOWN_NETWORKS if n.usdc is not None}
    payable: list[tuple[PaymentRequirements, Asset]] = []
    reasons: list[str] = []
    for option in required.accepts:
        asset = by_address.get(option.asset.lower())
        # The server's own words, echoed to a person: bounded, nothing invisible.
        where = f"{shown(option.scheme, 40)} on {shown(option.network, 60)} in {shown(option.asset, 60)}"
        if option.scheme != "exact" or not option.network.startswith("eip155:"):
            reasons.append(f"{where}: only the exact scheme on EVM networks is supported")
        elif networks is not None and option.network not in networks:
            reasons.append(f"{where}: the network is not allowed")
        elif asset is None:
            reasons.append(f"{where}: the asset is not an allowed dollar token")
        elif home.get(option.asset.lower(), option.network) != option.network:
            reasons.append(f"{where}: that is the address of USDC on {home[option.asset.lower()]}")
        elif not option.extra.get("name") or not option.extra.get("version"):
            reasons.append(f"{where}: no EIP-712 domain (extra.name, extra.version) to sign with")
        else:
            payable.append((option, asset))
    if not payable:
        raise NoPayableOption("no payment option can be paid: " + "; ".join(reasons or ["none offered"]))

    def rank(entry: tuple[PaymentRequirements, Asset]) -> tuple[int, Any]:
        option, asset = entry
        place = prefer.index(option.network) if option.network in prefer else len(prefer)
        return place, from_atomic(int(option.amount), asset.decimals)

    return min(payable, key=rank)
