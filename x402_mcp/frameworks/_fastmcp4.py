"""What only FastMCP 4 (on MCP SDK 2.x) has: a `ServerExtension`, which advertises
`capabilities.extensions["dev.x402-mcp/payments"]` (network, asset, payee)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastmcp.server.extensions import ServerExtension

from .sdk_line import IDENTIFIER


class PaymentsExtension(ServerExtension):
    """The payments' entry in `capabilities.extensions`, read per handshake from `settings()`."""

    identifier = IDENTIFIER

    def __init__(self, settings: Callable[[], dict[str, Any]]) -> None:
        self._settings = settings

    def settings(self) -> dict[str, Any]:
        return self._settings()
