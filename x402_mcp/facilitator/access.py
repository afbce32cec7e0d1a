"""Who may use the facilitator: a bearer token, or (without one) loopback clients only.

A facilitator pays gas for every settlement it sends, so anyone who can reach it
can spend its gas key. With a token, every request must carry
`Authorization: Bearer <token>`, compared in constant time. Without one, only
requests from a loopback address that also name a loopback host are served: the
`Host` check turns away a web page that rebinds its own name to 127.0.0.1 (DNS
rebinding), which a check of the client address alone would let through.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable

from ..core.addresses import parse_payee
from ..errors import ConfigurationError

__all__ = [
    "MIN_TOKEN_LENGTH",
    "TOKEN_VARIABLE",
    "bearer_matches",
    "is_loopback_host",
    "payee_allowlist",
    "token_problem",
]

TOKEN_VARIABLE = "X402_FACILITATOR_TOKEN"
"""The environment variable holding the token, for the facilitator and for the servers that use it."""

MIN_TOKEN_LENGTH = 16
"""A shorter token could be guessed; `openssl rand -hex 32` gives 64 characters."""

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def token_problem(token: str) -> str | None:
    """Why `token` cannot be used as a bearer token, or None (never echoes the token)."""
    if len(token) < MIN_TOKEN_LENGTH:
        return f"{TOKEN_VARIABLE} must be at least {MIN_TOKEN_LENGTH} characters long"
    if not all("!" <= char <= "~" for char in token):
        return f"{TOKEN_VARIABLE} must be printable ASCII without spaces (it travels in an HTTP header)"
    return None


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Whether an `Authorization` header value is `Bearer <token>`, compared in constant time."""
    if authorization is None:
        return False
    scheme, _, presented = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode("utf-8", "replace"), token.encode("utf-8"))


def is_loopback_host(host: str | None) -> bool:
    """Whether a bind address, client address or `Host` header (port allowed) names this machine only."""
    if not host:
        return False
    name = host.strip().lower()
    if name.startswith("["):  # "[::1]:8403"
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:  # "127.0.0.1:8403", "localhost:8403"
        name = name.partition(":")[0]
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def payee_allowlist(
    payees: Iterable[str] | None, *, tokens: Iterable[str] = (), what: str = "payees"
) -> frozenset[str] | None:
    """The payees the facilitator settles for, lower-cased for comparison; None for any payee.

    Each entry is held to `parse_payee`: a checksum that fails, the zero address, or
    one of the token contracts `tokens` itself (money sent there is lost) is refused, named.

    Raises:
        ConfigurationError: one string instead of a list, an entry that is not a
            payee, or an empty list (nothing could be settled).
    """
    if payees is None:
        return None
    if isinstance(payees, str):
        raise ConfigurationError(f"{what} must be a list of addresses, not one string")
    forbidden = tuple(tokens)
    listed = []
    for payee in payees:
        address = parse_payee(payee, what=f"{what} entry")
        for token in forbidden:
            parse_payee(address, what=f"{what} entry", asset=token)
        listed.append(address)
    if not listed:
        raise ConfigurationError(
            f"{what} is empty, so nothing could be settled; pass None to allow any payee"
        )
    return frozenset(payee.lower() for payee in listed)
