"""Who is calling: the identity a payment request is bound to (framework-neutral)."""

from __future__ import annotations

import json
import uuid
from typing import Any

# One stdio server process serves exactly one client, so a per-process id is
# that client's identity (in-memory test clients behave the same way).
PROCESS_CALLER = f"process:{uuid.uuid4()}"


def caller_identity(principal: str | None, http_request: Any) -> str | None:
    """`principal:…` when auth is on, `session:<Mcp-Session-Id>` on stateful HTTP,
    `process:<uuid>` for stdio, and None on stateless HTTP, where the host gives
    no identity and the unguessable paymentRequestId alone is the capability.

    Args:
        principal: the authenticated principal the framework reports, if any.
        http_request: the Starlette request of an HTTP call, None over stdio.
    """
    if principal is not None:
        return f"principal:{principal}"
    if http_request is None:
        return PROCESS_CALLER
    headers = getattr(http_request, "headers", None)
    session_id = headers.get("mcp-session-id") if headers is not None else None
    return f"session:{session_id}" if session_id else None


def token_principal(token: Any) -> str | None:
    """The principal of an MCP access token (`client_id`, issuer, subject, as the MCP SDK 2.x
    binds sessions to it), in the compact JSON the SDK writes; None without a token.

    Read by attribute, so the tokens of every framework (SDK 1.x and 2.x, FastMCP) fit."""
    if token is None:
        return None
    issuer = (getattr(token, "claims", None) or {}).get("iss")
    components = [token.client_id, None if issuer is None else str(issuer), getattr(token, "subject", None)]
    return json.dumps(components, separators=(",", ":"))
