"""Link bases: where payment links may point, decided by configuration and the local socket.

Sans-IO and framework-free, so configuration, the page server and the gate can
all read it without importing one another.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from .text import shown

DEFAULT_PAGE_PORT = 8402
LOOPBACK = "127.0.0.1"


def public_base(url: str, what: str = "public_url") -> str:
    """`url` checked as the base of payment links: `http(s)://host[:port][/path]`, no trailing `/`.

    Raises:
        ConfigurationError: naming `what` and what is wrong with it.
    """
    if any(char.isspace() or not char.isprintable() for char in url.strip()) or "\\" in url:
        raise ConfigurationError(f"{what}={shown(url)!r} holds spaces, control characters or backslashes")
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigurationError(f"{what}={shown(url)!r} is not a URL") from None
    if parts.hostname and not _host_is_clean(parts.hostname):
        raise ConfigurationError(
            f"{what}={shown(url)!r} names a host that is neither a DNS name nor an IP address"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{what}={shown(url)!r} must start with https:// (or http://) and name a host"
        )
    if parts.username is not None or parts.query or parts.fragment:
        raise ConfigurationError(f"{what}={shown(url)!r} must not carry a user, a query or a fragment")
    return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")


def own_base(scope: Mapping[str, Any]) -> str | None:
    """`scheme://host:port` of the local socket a request arrived on, or None when unknown.

    The ASGI `server` entry is the connection's own address (concrete even when
    bound to 0.0.0.0), which no header can change; `Host` is never read.
    """
    server = scope.get("server")
    if not isinstance(server, (tuple, list)) or len(server) != 2:
        return None
    host, port = server
    if not isinstance(host, str) or not isinstance(port, int):
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    scheme = "https" if scope.get("scheme") == "https" else "http"
    shown_host = f"[{address.compressed}]" if address.version == 6 else address.compressed
    return f"{scheme}://{shown_host}:{port}"


def service_url(url: object, *, what: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """`url` checked as the address of a service we call (RPC node, facilitator), stripped.

    One rule for every such setting: a scheme in `schemes`, a host, a port that is
    a number, no fragment, and no spaces or control characters anywhere. The value
    is never quoted in the error: node and facilitator URLs often carry an API key.

    Raises:
        ConfigurationError: naming `what` and what is wrong with it.
    """
    forms = " or ".join(f"{scheme}://" for scheme in schemes)
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"{what} must be a URL starting with {forms} and naming a host")
    text = url.strip()
    if any(char.isspace() or not char.isprintable() for char in text) or "\\" in text:
        raise ConfigurationError(f"{what} holds spaces, control characters or backslashes: it is not a URL")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigurationError(f"{what} is not a URL (its host or port cannot be read)") from None
    if parts.scheme.lower() not in schemes or not text.lower().startswith(f"{parts.scheme.lower()}://"):
        raise ConfigurationError(f"{what} must start with {forms}")
    if not parts.hostname:
        raise ConfigurationError(f"{what} names no host: write {schemes[-1]}://host[:port][/path]")
    if not _host_is_clean(parts.hostname):
        raise ConfigurationError(f"{what} names a host that is neither a DNS name nor an IP address")
    if parts.fragment or text.endswith("#"):
        raise ConfigurationError(f"{what} must not carry a #fragment")
    return text


def _host_is_clean(host: str) -> bool:
    """A DNS name (letters, digits, `-`, `_`, dots) or an IP address, as `urlsplit` gives it."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return all(
        label and all(char.isascii() and (char.isalnum() or char in "-_") for char in label)
        for label in labels
    )
