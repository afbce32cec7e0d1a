"""How a facilitator client authenticates: headers for each request (`FacilitatorAuth`).

`StaticHeaders` for an API key header, `BearerToken` for a facilitator run with
`x402-mcp facilitator`, and `cdp.CdpAuth` (a fresh JWT per request) for Coinbase's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal, Protocol

from ..errors import ConfigurationError

__all__ = ["TOKEN_VARIABLE", "BearerToken", "Endpoint", "FacilitatorAuth", "StaticHeaders"]

Endpoint = Literal["verify", "settle", "supported"]


class FacilitatorAuth(Protocol):
    """Headers to authenticate one request; called afresh for every request (JWTs expire)."""

    def headers(self, endpoint: Endpoint, method: str, url: str) -> Mapping[str, str]: ...


class StaticHeaders:
    """Fixed headers per endpoint (an API key header, say); `common` goes on every request."""

    def __init__(
        self,
        common: Mapping[str, str] | None = None,
        *,
        verify: Mapping[str, str] | None = None,
        settle: Mapping[str, str] | None = None,
        supported: Mapping[str, str] | None = None,
    ) -> None:
        self._common = dict(common or {})
        self._by_endpoint: dict[str, dict[str, str]] = {
            "verify": dict(verify or {}),
            "settle": dict(settle or {}),
            "supported": dict(supported or {}),
        }

    def headers(self, endpoint: Endpoint, method: str, url: str) -> Mapping[str, str]:
        return {**self._common, **self._by_endpoint[endpoint]}

    def __repr__(self) -> str:
        # Header values are usually secrets: show only which headers are set.
        return f"StaticHeaders(common={sorted(self._common)})"


TOKEN_VARIABLE = "X402_FACILITATOR_TOKEN"
"""Where `x402-mcp facilitator` reads its bearer token, and `BearerToken.from_env` the same."""


class BearerToken:
    """`Authorization: Bearer <token>` on every request: what `x402-mcp facilitator` asks for."""

    def __init__(self, token: str) -> None:
        if not token or not all("!" <= char <= "~" for char in token):
            raise ConfigurationError("a bearer token must be printable ASCII without spaces, and not empty")
        self._token = token

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BearerToken | None:
        """The token in `$X402_FACILITATOR_TOKEN`, or None when it is unset or empty."""
        token = (os.environ if env is None else env).get(TOKEN_VARIABLE, "").strip()
        return cls(token) if token else None

    def headers(self, endpoint: Endpoint, method: str, url: str) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def __repr__(self) -> str:
        return "BearerToken(…)"  # never the token
