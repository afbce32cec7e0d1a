"""Offering the payment link by URL-mode elicitation, on any framework built on the MCP SDK.

Every door reaches the SDK's `ServerSession` of the call (`MCPServer` hands it over in
its request context; FastMCP keeps it in its own request context), so one function
builds the gate's `OfferLink` for either.
"""

from __future__ import annotations

from typing import Any

from ..gate import OfferLink

LAST_HANDSHAKE_ERA = "2025-11-25"
"""Server-to-client requests exist up to this protocol version (handshake-era sessions)."""


def url_elicitation(session: Any, protocol_version: str, request_id: Any) -> OfferLink | None:
    """The offer of the link to the client of `session`, or None when it cannot take one."""
    capabilities = getattr(session, "client_capabilities", None)
    if capabilities is None:  # MCP SDK 1.x keeps them in the `initialize` params
        capabilities = getattr(getattr(session, "client_params", None), "capabilities", None)
    elicitation = getattr(capabilities, "elicitation", None)
    if elicitation is None or elicitation.url is None or protocol_version > LAST_HANDSHAKE_ERA:
        return None

    async def offer(message: str, url: str, elicitation_id: str) -> None:
        await session.elicit_url(message, url, elicitation_id=elicitation_id, related_request_id=request_id)

    return offer
