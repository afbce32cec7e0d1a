"""Who is calling: the identity a payment request is bound to (framework-neutral)."""

from __future__ import annotations

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
